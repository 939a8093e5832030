//! The factory loop: a fixed set of (instance, sample) jobs, run by up to
//! `workers` concurrent episodes on tokio, results folded into the corpus by
//! this task alone.
//!
//! Resume is exact because every job is either
//! - kept: its row is in a segment listed by the manifest (the row carries
//!   `instance_id` and `sample`), or
//! - finished without a row (rejected, duplicate, capped): it has a line in
//!   the fsynced, append-only `state/done.jsonl`.
//!
//! A rerun skips both. A kept row still buffered at a crash is in neither,
//! so its job runs again: no kept row is lost, none is duplicated, and no
//! sample is solved twice once it is recorded. Retryable failures (a busy
//! Docker daemon, an unreachable model) are logged but not marked done, so
//! a rerun tries them again.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::FactoryError;
use super::seams::{HiddenEvalGate, InstanceEnv, PatchVerifier, Verdict, tampered_paths};
use crate::corpus::{self, CorpusRow, CorpusWriter, Insert};
use crate::engine::{EngineConfig, Outcome, Trajectory, run_episode};
use crate::error::Retryable;
use crate::model::ModelSpec;
use crate::model::spec::{PolicyContext, build_policy};
use crate::swebench::instance::Instance;

/// Everything one factory run needs, already validated.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Corpus directory (rerun the same one to resume).
    pub out: PathBuf,
    /// The corpus `dataset` column.
    pub dataset_name: String,
    /// Instances with their license, in dataset order.
    pub instances: Vec<(Instance, String)>,
    /// Episodes per instance.
    pub samples: u32,
    /// Cap on kept rows per instance.
    pub max_per_instance: Option<u32>,
    /// Concurrent episodes.
    pub workers: usize,
    /// The teacher.
    pub teacher: ModelSpec,
    /// What building the teacher needs.
    pub policy_ctx: PolicyContext,
    /// Engine limits.
    pub engine: EngineConfig,
    /// Rows buffered before a segment is written.
    pub flush_rows: usize,
    /// Longest time rows stay buffered.
    pub flush_every: Duration,
    /// Draw a progress bar.
    pub progress: bool,
    /// The terminal display the run's bar joins (the live display's
    /// per-episode lines are drawn in it); `None` draws the bar alone.
    pub bars: Option<indicatif::MultiProgress>,
    /// Keep `suspicious` trajectories (a cheat detector fired) as rows,
    /// with their flags (`--accept-flagged`).
    pub accept_flagged: bool,
    /// Runs of the final verification that must all pass (`--gate-runs`).
    pub gate_runs: u32,
    /// Write unresolved, errored and flagged trajectories to the rejected
    /// Parquet split (`rejected/part-*.parquet`, `--keep-rejected`).
    pub keep_rejected: bool,
    /// Provenance recorded on every row.
    pub provenance: RunProvenance,
}

/// What every row of a run says about where it came from.
#[derive(Debug, Clone, Default)]
pub struct RunProvenance {
    /// sha256 of the dataset file.
    pub dataset_sha256: String,
    /// sha256 of the public-sources allowlist file.
    pub allowlist_sha256: String,
    /// The teacher spec as given.
    pub teacher_spec: String,
    /// Sampling parameters (canonical JSON).
    pub sampling: String,
}

/// Counts of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Jobs in the plan (instances × samples).
    pub jobs: u64,
    /// Jobs already done in an earlier run.
    pub resumed: u64,
    /// Episodes run now.
    pub episodes: u64,
    /// Rows kept now.
    pub kept: u64,
    /// Resolved, but the same patch was already kept for the instance.
    pub duplicates: u64,
    /// Resolved, but the instance had reached `--max-per-instance`.
    pub capped: u64,
    /// Not resolved by the official eval.
    pub unresolved: u64,
    /// Patches that changed test files.
    pub tampered: u64,
    /// Refused by strict grading or a cheat detector (`flagged`).
    pub flagged: u64,
    /// Instances whose empty patch resolves (`broken_instance`): no episode ran.
    pub broken: u64,
    /// A final verification passed, a re-run on a fresh environment did not.
    pub flaky: u64,
    /// Episodes that failed (sandbox, model, eval errors).
    pub errors: u64,
    /// Tool calls over all episodes run now.
    pub steps: u64,
    /// Model calls over all episodes run now.
    pub model_calls: u64,
    /// Rows in the corpus at the end.
    pub rows_total: u64,
    /// Wall time of the run.
    pub wall_s: f64,
}

/// One line of `state/done.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DoneLine {
    model: String,
    instance_id: String,
    sample: u32,
    status: String,
}

/// The append-only log of jobs that finished without a row.
struct DoneLog {
    file: File,
    done: HashMap<(String, String, u32), String>,
}

impl DoneLog {
    fn open(out: &Path) -> Result<Self, FactoryError> {
        let dir = out.join("state");
        std::fs::create_dir_all(&dir)
            .map_err(|e| FactoryError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("done.jsonl");
        let mut done = HashMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| FactoryError::io("reading done.jsonl", e))?;
                // A kill -9 can leave a torn last line: that job simply runs again.
                if let Ok(d) = serde_json::from_str::<DoneLine>(&line) {
                    done.insert((d.model, d.instance_id, d.sample), d.status);
                }
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FactoryError::io(format!("opening {}", path.display()), e))?;
        // Terminate a torn last line so the next record starts clean.
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0 {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.last() != Some(&b'\n') {
                file.write_all(b"\n")
                    .map_err(|e| FactoryError::io("repairing done.jsonl", e))?;
            }
        }
        Ok(Self { file, done })
    }

    fn contains(&self, model: &str, instance_id: &str, sample: u32) -> bool {
        self.status(model, instance_id, sample).is_some()
    }

    fn status(&self, model: &str, instance_id: &str, sample: u32) -> Option<&str> {
        self.done
            .get(&(model.to_string(), instance_id.to_string(), sample))
            .map(String::as_str)
    }

    fn record(
        &mut self,
        model: &str,
        instance_id: &str,
        sample: u32,
        status: &str,
    ) -> Result<(), FactoryError> {
        let line = serde_json::to_string(&DoneLine {
            model: model.into(),
            instance_id: instance_id.into(),
            sample,
            status: status.into(),
        })
        .map_err(|e| FactoryError::Other(e.to_string()))?;
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| FactoryError::io("appending to done.jsonl", e))?;
        self.done.insert(
            (model.to_string(), instance_id.to_string(), sample),
            status.to_string(),
        );
        Ok(())
    }
}

/// One line of `rejected/rejected.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedLine {
    /// Instance.
    pub instance_id: String,
    /// Sample number.
    pub sample: u32,
    /// `unresolved`, `tampered_tests`, `flagged`, `broken_instance`, `flaky`,
    /// `eval_error`, `error`, `duplicate`, `capped`.
    pub reason: String,
    /// What happened, in words.
    pub detail: String,
    /// Teacher.
    pub model: String,
    /// Final patch, when there was one.
    pub patch: String,
    /// Tool calls.
    pub steps: u32,
    /// Episode wall time.
    pub wall_s: f64,
    /// Whether a rerun will try this job again.
    pub retried_on_resume: bool,
    /// When.
    pub created_at: chrono::DateTime<Utc>,
    /// Every attempt of the episode in order, each with its own patch and
    /// gate result (`patch` above is the last one's).
    #[serde(default)]
    pub attempts: Vec<RejectedAttempt>,
    /// The run budget that ended the episode (`wall`, `tokens`;
    /// `--max-wall`, `--max-tokens`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::engine::Budget>,
}

/// One attempt of a rejected episode, as `rejected.jsonl` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedAttempt {
    /// 1-based attempt number.
    pub index: u32,
    /// The policy that acted.
    pub model: String,
    /// The attempt's diff at gate time.
    pub patch: String,
    /// Whether the model called `submit`.
    pub submitted: bool,
    /// The gate's verdict (`None`: the attempt never reached the gate).
    pub gate_passed: Option<bool>,
    /// The gate run's exit code.
    pub gate_exit_code: Option<i32>,
    /// The gate run hit its timeout.
    pub gate_timed_out: bool,
    /// The gate's output (head + tail, as in the trajectory).
    pub gate_output: String,
    /// Changes the patch policy dropped before the gate.
    pub dropped: Vec<String>,
    /// Cheat-detector findings.
    pub flags: Vec<String>,
    /// Why the attempt ended (`submitted`, `stuck`, `wall_budget`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::engine::EndReason>,
}

impl From<&crate::engine::trajectory::Attempt> for RejectedAttempt {
    fn from(a: &crate::engine::trajectory::Attempt) -> Self {
        Self {
            index: a.index,
            model: a.model.clone(),
            patch: a.patch.clone(),
            submitted: a.submitted,
            gate_passed: a.gate.as_ref().map(|g| g.passed),
            gate_exit_code: a.gate.as_ref().and_then(|g| g.exit_code),
            gate_timed_out: a.gate.as_ref().is_some_and(|g| g.timed_out),
            gate_output: a
                .gate
                .as_ref()
                .map(|g| g.output.clone())
                .unwrap_or_default(),
            dropped: a.dropped.clone(),
            flags: a.flags.clone(),
            ended: a.ended,
        }
    }
}

enum JobOutcome {
    Kept(Box<CorpusRow>),
    Rejected {
        reason: &'static str,
        detail: String,
        retryable: bool,
        /// The trajectory as a rejected-split row (with `--keep-rejected`,
        /// when an episode ran).
        row: Option<Box<CorpusRow>>,
    },
}

/// What [`judge`] decided.
enum Decision {
    Keep,
    Reject {
        reason: &'static str,
        detail: String,
        retryable: bool,
    },
}

/// What [`judge`] learnt on the way: the final verification's counts and
/// every flag raised.
#[derive(Debug, Default)]
struct JudgeInfo {
    targets_passed: i32,
    targets_total: i32,
    baseline_kept: i32,
    baseline_total: i32,
    runs: i32,
    verified_by: Option<String>,
    flags: Vec<String>,
}

impl JudgeInfo {
    fn saw(&mut self, v: &Verdict) {
        self.targets_passed = v.f2p_passed as i32;
        self.targets_total = v.f2p_total as i32;
        self.baseline_kept = v.p2p_passed as i32;
        self.baseline_total = v.p2p_total as i32;
        self.verified_by = Some(v.verified_by.clone());
        self.add_flags(&v.flags);
    }

    fn add_flags(&mut self, flags: &[String]) {
        for f in flags {
            if !self.flags.contains(f) {
                self.flags.push(f.clone());
            }
        }
    }
}

struct JobResult {
    instance_id: String,
    sample: u32,
    outcome: JobOutcome,
    trajectory: Option<Box<Trajectory>>,
    model: String,
}

struct Shared {
    env: Arc<dyn InstanceEnv>,
    verifier: Arc<dyn PatchVerifier>,
    teacher: ModelSpec,
    policy_ctx: PolicyContext,
    engine: EngineConfig,
    dataset_name: String,
    accept_flagged: bool,
    gate_runs: u32,
    controls: Controls,
    keep_rejected: bool,
    provenance: RunProvenance,
}

/// One line of `state/controls.jsonl`: an instance's empty-patch control.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ControlLine {
    instance_id: String,
    verified_by: String,
    empty_patch_resolves: bool,
}

/// The empty-patch control of each instance, run once (also across
/// resumes: results are appended to `state/controls.jsonl`).
struct Controls {
    verified_by: String,
    cells: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
    file: Mutex<File>,
}

impl Controls {
    fn open(out: &Path, verified_by: String) -> Result<Self, FactoryError> {
        let path = out.join("state").join("controls.jsonl");
        let mut cells = HashMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(c) = serde_json::from_str::<ControlLine>(&line)
                    && c.verified_by == verified_by
                {
                    cells.insert(
                        c.instance_id,
                        Arc::new(tokio::sync::OnceCell::new_with(Some(
                            c.empty_patch_resolves,
                        ))),
                    );
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FactoryError::io(format!("opening {}", path.display()), e))?;
        Ok(Self {
            verified_by,
            cells: Mutex::new(cells),
            file: Mutex::new(file),
        })
    }

    /// True when the empty patch resolves `inst` (run at most once).
    async fn empty_patch_resolves(
        &self,
        verifier: &dyn PatchVerifier,
        inst: &Instance,
    ) -> Result<bool, FactoryError> {
        let cell = {
            let mut cells = self
                .cells
                .lock()
                .map_err(|_| FactoryError::Other("control cache poisoned".into()))?;
            cells.entry(inst.instance_id.clone()).or_default().clone()
        };
        let resolves = cell
            .get_or_try_init(|| async {
                let r = verifier.empty_patch_resolves(inst).await?;
                let line = serde_json::to_string(&ControlLine {
                    instance_id: inst.instance_id.clone(),
                    verified_by: self.verified_by.clone(),
                    empty_patch_resolves: r,
                })
                .map_err(|e| FactoryError::Other(e.to_string()))?;
                if let Ok(mut f) = self.file.lock() {
                    f.write_all(format!("{line}\n").as_bytes())
                        .and_then(|_| f.sync_data())
                        .map_err(|e| FactoryError::io("appending to controls.jsonl", e))?;
                }
                Ok::<bool, FactoryError>(r)
            })
            .await?;
        Ok(*resolves)
    }
}

/// Parses `I/N` (0 ≤ I < N).
pub fn parse_shard(s: &str) -> Result<(u64, u64), FactoryError> {
    let bad = || {
        FactoryError::Config(format!(
            "--shard `{s}`: expected I/N with 0 <= I < N, e.g. 0/4"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Whether `instance_id` belongs to shard `i` of `n`: the first 8 bytes of
/// its sha256, modulo `n`. Stable across machines, dataset order and
/// dataset growth.
pub fn in_shard(instance_id: &str, (i, n): (u64, u64)) -> bool {
    let h = corpus::sha256_hex(instance_id.as_bytes());
    let v = u64::from_str_radix(&h[..16], 16).unwrap_or(0);
    v % n == i
}

/// Runs the plan to completion (or until Ctrl-C).
pub async fn run(
    plan: RunPlan,
    env: Arc<dyn InstanceEnv>,
    verifier: Arc<dyn PatchVerifier>,
) -> Result<Summary, FactoryError> {
    let started = Instant::now();
    // Build the teacher once up front: a bad spec or script fails before any episode.
    let mut probe = build_policy(&plan.teacher, &plan.policy_ctx).await?;
    let model = probe.name();
    probe.shutdown().await;
    drop(probe);

    let mut writer = CorpusWriter::open(&plan.out)?;
    if !plan.provenance.allowlist_sha256.is_empty() {
        writer.set_allowlist_sha256(&plan.provenance.allowlist_sha256);
    }
    let mut done = DoneLog::open(&plan.out)?;
    let rejected_dir = plan.out.join("rejected");
    std::fs::create_dir_all(&rejected_dir)
        .map_err(|e| FactoryError::io(format!("creating {}", rejected_dir.display()), e))?;
    // The rejected split. A job whose row is in it is finished; its done
    // line is written only once that row is durable (after a flush), so a
    // kill -9 either loses both (the job runs again) or neither.
    let mut rejected_writer = if plan.keep_rejected {
        let mut w = CorpusWriter::open_split(&rejected_dir, corpus::Split::Rejected)?;
        if !plan.provenance.allowlist_sha256.is_empty() {
            w.set_allowlist_sha256(&plan.provenance.allowlist_sha256);
        }
        Some(w)
    } else {
        None
    };
    let mut pending_done: Vec<(String, u32, &'static str)> = Vec::new();
    let mut rejected_log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(rejected_dir.join("rejected.jsonl"))
        .map_err(|e| FactoryError::io("opening rejected/rejected.jsonl", e))?;

    let controls = Controls::open(&plan.out, verifier.describe())?;
    let shared = Arc::new(Shared {
        env,
        verifier,
        gate_runs: plan.gate_runs.max(1),
        controls,
        teacher: plan.teacher.clone(),
        policy_ctx: plan.policy_ctx.clone(),
        engine: plan.engine.clone(),
        dataset_name: plan.dataset_name.clone(),
        accept_flagged: plan.accept_flagged,
        keep_rejected: plan.keep_rejected,
        provenance: plan.provenance.clone(),
    });
    let instances: Vec<Arc<(Instance, String)>> =
        plan.instances.iter().cloned().map(Arc::new).collect();
    // Sample-major: every instance's sample 0 before any sample 1, so caps
    // are known before later samples start.
    let mut queue: VecDeque<(usize, u32)> = (0..plan.samples)
        .flat_map(|s| (0..instances.len()).map(move |i| (i, s)))
        .collect();
    let mut sum = Summary {
        jobs: queue.len() as u64,
        ..Summary::default()
    };
    let bar = match (&plan.bars, progress_bar(sum.jobs, plan.progress)) {
        (Some(multi), bar) if plan.progress => multi.insert(0, bar),
        (_, bar) => bar,
    };
    let mut set: JoinSet<JobResult> = JoinSet::new();
    let mut last_flush = Instant::now();
    let mut last_rflush = Instant::now();
    let workers = plan.workers.max(1);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        while set.len() < workers {
            let Some((idx, sample)) = queue.pop_front() else {
                break;
            };
            let item = instances[idx].clone();
            let id = item.0.instance_id.as_str();
            if done.contains(&model, id, sample)
                || writer.has_sample(id, &model, sample as i32)
                || rejected_writer
                    .as_ref()
                    .is_some_and(|w| w.has_sample(id, &model, sample as i32))
            {
                sum.resumed += 1;
                bar.inc(1);
                continue;
            }
            if plan
                .max_per_instance
                .is_some_and(|cap| writer.kept_for(id) >= cap)
            {
                // Deterministic from the corpus: needs no done-log line.
                sum.capped += 1;
                bar.inc(1);
                continue;
            }
            let shared = shared.clone();
            set.spawn(async move { run_job(&shared, &item, sample).await });
        }
        let next = tokio::select! {
            n = set.join_next() => n,
            _ = &mut ctrl_c => {
                set.abort_all();
                crate::sandbox::blocking(|| writer.flush())?;
                if let Some(rw) = rejected_writer.as_mut() {
                    crate::sandbox::blocking(|| rw.flush())?;
                    for (id, sample, reason) in pending_done.drain(..) {
                        done.record(&model, &id, sample, reason)?;
                    }
                }
                bar.abandon_with_message("interrupted");
                return Err(FactoryError::Interrupted);
            }
        };
        let Some(joined) = next else { break };
        let res = joined.map_err(|e| FactoryError::Other(format!("episode task failed: {e}")))?;
        sum.episodes += 1;
        if let Some(t) = &res.trajectory {
            sum.steps += u64::from(t.steps());
            sum.model_calls += t
                .attempts
                .iter()
                .flat_map(|a| &a.events)
                .filter(|e| matches!(e, crate::engine::Event::ModelCall { .. }))
                .count() as u64;
        }
        let cap_reached = plan
            .max_per_instance
            .is_some_and(|cap| writer.kept_for(&res.instance_id) >= cap);
        let (reason, detail, retryable, rejected_row) = match res.outcome {
            JobOutcome::Kept(_) if cap_reached => (
                "capped",
                "resolved, but the instance reached --max-per-instance".to_string(),
                false,
                None,
            ),
            JobOutcome::Kept(row) => match writer.insert(*row)? {
                Insert::Added => {
                    sum.kept += 1;
                    bar.inc(1);
                    bar.set_message(message(&sum));
                    if writer.buffered() >= plan.flush_rows.max(1)
                        || last_flush.elapsed() >= plan.flush_every
                    {
                        // Encoding the tail, fsync and rename: off the
                        // runtime's threads, so episodes' model I/O goes on.
                        crate::sandbox::blocking(|| writer.flush())?;
                        last_flush = Instant::now();
                    }
                    note_difficulty(
                        &plan,
                        &model,
                        &res.instance_id,
                        &mut writer,
                        rejected_writer.as_ref(),
                        &done,
                        &pending_done,
                    );
                    continue;
                }
                Insert::Duplicate => (
                    "duplicate",
                    "resolved, but the same patch is already kept for this instance".to_string(),
                    false,
                    None,
                ),
            },
            JobOutcome::Rejected {
                reason,
                detail,
                retryable,
                row,
            } => (reason, detail, retryable, row),
        };
        match reason {
            "capped" => sum.capped += 1,
            "duplicate" => sum.duplicates += 1,
            "unresolved" => sum.unresolved += 1,
            "tampered_tests" => sum.tampered += 1,
            "flagged" => sum.flagged += 1,
            "broken_instance" => sum.broken += 1,
            "flaky" => sum.flaky += 1,
            _ => sum.errors += 1,
        }
        let traj = res.trajectory.as_deref();
        let line = RejectedLine {
            instance_id: res.instance_id.clone(),
            sample: res.sample,
            reason: reason.to_string(),
            detail,
            model: res.model.clone(),
            patch: traj
                .and_then(|t| t.attempts.last())
                .map(|a| a.patch.clone())
                .unwrap_or_default(),
            steps: traj.map(|t| t.steps()).unwrap_or(0),
            wall_s: traj.map(|t| t.wall_s).unwrap_or(0.0),
            retried_on_resume: retryable,
            created_at: Utc::now(),
            attempts: traj
                .map(|t| t.attempts.iter().map(RejectedAttempt::from).collect())
                .unwrap_or_default(),
            budget: traj.and_then(|t| t.budget),
        };
        if let Some(t) = traj {
            let dir = rejected_dir
                .join(sanitize(&res.instance_id))
                .join(format!("sample-{}", res.sample));
            t.save(&dir)
                .map_err(|e| FactoryError::io(format!("saving {}", dir.display()), e))?;
        }
        let json = serde_json::to_string(&line).map_err(|e| FactoryError::Other(e.to_string()))?;
        rejected_log
            .write_all(format!("{json}\n").as_bytes())
            .and_then(|_| rejected_log.sync_data())
            .map_err(|e| FactoryError::io("appending to rejected.jsonl", e))?;
        match (rejected_writer.as_mut(), rejected_row) {
            (Some(rw), Some(row)) if !retryable => {
                rw.insert(*row)?;
                pending_done.push((res.instance_id.clone(), res.sample, reason));
                if rw.buffered() >= plan.flush_rows.max(1)
                    || last_rflush.elapsed() >= plan.flush_every
                {
                    crate::sandbox::blocking(|| rw.flush())?;
                    last_rflush = Instant::now();
                    for (id, sample, reason) in pending_done.drain(..) {
                        done.record(&model, &id, sample, reason)?;
                    }
                }
            }
            _ if !retryable => done.record(&model, &res.instance_id, res.sample, reason)?,
            _ => {}
        }
        note_difficulty(
            &plan,
            &model,
            &res.instance_id,
            &mut writer,
            rejected_writer.as_ref(),
            &done,
            &pending_done,
        );
        tracing::info!(instance = %res.instance_id, sample = res.sample, reason, "episode not kept");
        bar.inc(1);
        bar.set_message(message(&sum));
    }
    if let Some(rw) = rejected_writer.take() {
        rw.finish()?;
        for (id, sample, reason) in pending_done.drain(..) {
            done.record(&model, &id, sample, reason)?;
        }
    }
    // Instances finished in earlier runs (or whose last job was skipped
    // here) get their solve rate too.
    for (inst, _) in &plan.instances {
        note_difficulty(
            &plan,
            &model,
            &inst.instance_id,
            &mut writer,
            None,
            &done,
            &pending_done,
        );
    }
    let manifest = writer.finish()?;
    sum.rows_total = manifest.rows;
    sum.wall_s = started.elapsed().as_secs_f64();
    bar.finish_with_message(message(&sum));
    Ok(sum)
}

/// Records `instance_id`'s solve rate once every one of its samples is
/// accounted for: verified samples (kept, duplicate, capped after a run)
/// over samples run (instances whose empty patch resolves, and samples
/// skipped by the cap, never ran). Nothing is recorded while a sample is
/// still to run (including retryable failures).
fn note_difficulty(
    plan: &RunPlan,
    model: &str,
    instance_id: &str,
    writer: &mut CorpusWriter,
    rejected: Option<&CorpusWriter>,
    done: &DoneLog,
    pending: &[(String, u32, &'static str)],
) {
    let (mut run, mut verified) = (0u32, 0u32);
    for s in 0..plan.samples {
        if writer.has_sample(instance_id, model, s as i32) {
            run += 1;
            verified += 1;
            continue;
        }
        let status = done.status(model, instance_id, s).or_else(|| {
            pending
                .iter()
                .find(|(id, sample, _)| id == instance_id && *sample == s)
                .map(|p| p.2)
        });
        match status {
            Some("duplicate" | "capped") => {
                run += 1;
                verified += 1;
            }
            Some("broken_instance") => {}
            Some(_) => run += 1,
            None if rejected.is_some_and(|w| w.has_sample(instance_id, model, s as i32)) => {
                run += 1
            }
            None if plan
                .max_per_instance
                .is_some_and(|cap| writer.kept_for(instance_id) >= cap) => {}
            None => return,
        }
    }
    writer.set_difficulty(instance_id, corpus::store::Difficulty::new(run, verified));
}

fn message(s: &Summary) -> String {
    format!(
        "kept {} · unresolved {} · tampered {} · flagged {} · broken {} · dup {} · errors {}",
        s.kept, s.unresolved, s.tampered, s.flagged, s.broken, s.duplicates, s.errors
    )
}

fn progress_bar(len: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} episodes  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn rejected(reason: &'static str, detail: String, retryable: bool) -> JobOutcome {
    JobOutcome::Rejected {
        reason,
        detail,
        retryable,
        row: None,
    }
}

fn reject(reason: &'static str, detail: String, retryable: bool) -> Decision {
    Decision::Reject {
        reason,
        detail,
        retryable,
    }
}

async fn run_job(shared: &Shared, item: &(Instance, String), sample: u32) -> JobResult {
    let (inst, license) = item;
    let mut result = JobResult {
        instance_id: inst.instance_id.clone(),
        sample,
        outcome: rejected("error", String::new(), false),
        trajectory: None,
        model: String::new(),
    };
    // The empty-patch control, before any teacher call: an instance that
    // resolves with no change is never used.
    match shared
        .controls
        .empty_patch_resolves(shared.verifier.as_ref(), inst)
        .await
    {
        Ok(false) => {}
        Ok(true) => {
            result.outcome = rejected(
                "broken_instance",
                "the empty patch resolves this instance: its tests cannot tell a fix from no change".into(),
                false,
            );
            return result;
        }
        Err(e) => {
            let r = e.is_retryable();
            result.outcome = rejected("eval_error", format!("empty-patch control: {e}"), r);
            return result;
        }
    }
    let mut policy = match build_policy(&shared.teacher, &shared.policy_ctx).await {
        Ok(p) => p,
        Err(e) => {
            let r = e.is_retryable();
            result.outcome = rejected("error", format!("building the teacher: {e}"), r);
            return result;
        }
    };
    result.model = policy.name();
    let prepared = match shared.env.prepare(inst).await {
        Ok(p) => p,
        Err(e) => {
            let r = e.is_retryable();
            result.outcome = rejected("error", format!("preparing the sandbox: {e}"), r);
            policy.shutdown().await;
            return result;
        }
    };
    let gate = HiddenEvalGate::new(inst, shared.verifier.as_ref());
    // The instance's test files (from its test patch) are protected beside
    // the policy's defaults.
    let patch_policy = match crate::gate::policy::PatchPolicy::load(None)
        .and_then(|p| p.with_protected(&crate::factory::seams::protected_globs(inst)))
    {
        Ok(p) => p,
        Err(e) => {
            result.outcome = rejected("error", format!("loading the patch policy: {e}"), false);
            policy.shutdown().await;
            return result;
        }
    };
    // The teacher's API key and any other secret of this process never
    // reach a corpus row. The hidden evaluation has no approval step.
    let job = match crate::engine::Job::new(
        inst.problem_statement.clone(),
        inst.instance_id.clone(),
        patch_policy,
        None,
        None,
    ) {
        Ok(j) => j,
        Err(e) => {
            result.outcome = rejected("error", e.to_string(), false);
            policy.shutdown().await;
            return result;
        }
    };
    let episode = job.episode(prepared.sandbox.as_ref(), &prepared.workspace, &gate);
    // The live display tells samples of one instance apart.
    let label = format!("{} s{sample}", inst.instance_id);
    let mut engine = shared.engine.clone();
    engine.observer = shared.engine.observer.clone().map(|o| {
        let label = label.clone();
        crate::engine::Observer(Arc::new(move |_: &str, ev: &crate::engine::Live| {
            (o.0)(&label, ev)
        }))
    });
    let outcome = run_episode(&episode, &engine, std::slice::from_mut(&mut policy)).await;
    if let Some(o) = &engine.observer {
        let outcome = outcome.as_ref().ok().map(|t| t.outcome);
        (o.0)(&label, &crate::engine::Live::EpisodeEnd { outcome });
    }
    policy.shutdown().await;
    let traj = match outcome {
        Ok(t) => t,
        Err(e) => {
            let r = e.is_retryable();
            result.outcome = rejected("error", format!("episode failed: {e}"), r);
            if let Err(e) = prepared.close().await {
                tracing::warn!("closing the sandbox: {e}");
            }
            return result;
        }
    };
    if let Err(e) = prepared.close().await {
        tracing::warn!("closing the sandbox: {e}");
    }
    let gate_flags = gate.flags();
    let mut info = JudgeInfo::default();
    info.add_flags(&traj.flags);
    for a in &traj.attempts {
        info.add_flags(&a.flags);
    }
    info.add_flags(&gate_flags);
    let decision = judge(shared, inst, &traj, &gate_flags, &mut info).await;
    let image_digest = shared.env.image_digest(inst).await;
    let build = |reason: &str| {
        build_row(
            shared,
            inst,
            license,
            sample,
            &traj,
            &info,
            reason,
            image_digest.clone(),
        )
    };
    result.outcome = match decision {
        Decision::Keep => match build("") {
            Ok(row) => JobOutcome::Kept(Box::new(row)),
            Err(e) => rejected("error", format!("building the corpus row: {e}"), false),
        },
        Decision::Reject {
            reason,
            detail,
            retryable,
        } => {
            let row = if shared.keep_rejected && !retryable {
                match build(reason) {
                    Ok(r) => Some(Box::new(r)),
                    Err(e) => {
                        tracing::warn!(instance = %inst.instance_id, "no rejected row: {e}");
                        None
                    }
                }
            } else {
                None
            };
            JobOutcome::Rejected {
                reason,
                detail,
                retryable,
                row,
            }
        }
    };
    result.trajectory = Some(Box::new(traj));
    result
}

/// Every change the patch policy refused in an episode: `str_replace`
/// refusals and changes dropped before the gate.
fn policy_refusals(traj: &Trajectory) -> Vec<String> {
    let mut out = vec![];
    for a in &traj.attempts {
        out.extend(a.dropped.iter().cloned());
        for ev in &a.events {
            if let crate::engine::Event::ToolCall {
                call,
                result,
                is_error: true,
                ..
            } = ev
                && call.name == "str_replace"
                && result.starts_with("ERROR: refused to change")
            {
                out.push(result.trim_start_matches("ERROR: ").to_string());
            }
        }
    }
    out
}

/// Decides what happens to a finished episode; builds the row when kept.
/// `gate_flags` are the strict-grading flags the in-loop checks raised.
async fn judge(
    shared: &Shared,
    inst: &Instance,
    traj: &Trajectory,
    gate_flags: &[String],
    info: &mut JudgeInfo,
) -> Decision {
    match traj.outcome {
        Outcome::Verified => {}
        Outcome::Suspicious if shared.accept_flagged => {}
        Outcome::Suspicious => {
            return reject("flagged", traj.flags.join("; "), false);
        }
        Outcome::AlreadyPassing => {
            let why = if traj.attempts.is_empty() {
                "the hidden gate reported a pass at baseline"
            } else {
                "the gate passed with no change to the repository (flaky tests): nothing to keep"
            };
            return reject("error", why.into(), false);
        }
        Outcome::GateHeld => {
            if let Some(abort) = &traj.aborted {
                return reject("error", format!("episode aborted: {abort}"), false);
            }
            // Any attempt that edited tests marks the episode: later attempts
            // (often an empty resubmit) must not hide it.
            for a in &traj.attempts {
                if !a.dropped.is_empty() {
                    return reject(
                        "tampered_tests",
                        format!(
                            "attempt {} changed files the patch policy refuses (dropped before the gate): {}",
                            a.index,
                            a.dropped.join("; ")
                        ),
                        false,
                    );
                }
                if let Ok(t) = tampered_paths(inst, &a.patch)
                    && !t.is_empty()
                {
                    return reject(
                        "tampered_tests",
                        format!("attempt {} changed test files: {}", a.index, t.join(", ")),
                        false,
                    );
                }
            }
            // A patch strict grading refused marks the episode too.
            if !gate_flags.is_empty() {
                return reject(
                    "flagged",
                    format!("strict grading: {}", gate_flags.join("; ")),
                    false,
                );
            }
            let detail = traj
                .attempts
                .last()
                .and_then(|a| a.gate.as_ref())
                .map(|g| g.output.clone())
                .unwrap_or_else(|| "no attempt passed the hidden evaluation".into());
            return reject("unresolved", detail, false);
        }
    }
    // A teacher that tried to change tests or runner config (refused at
    // edit time, or dropped before the gate) is no example to train on,
    // even when the rest of its patch is right.
    let refused = policy_refusals(traj);
    if !refused.is_empty() {
        return reject(
            "tampered_tests",
            format!(
                "the teacher tried to change files the patch policy refuses: {}",
                refused.join("; ")
            ),
            false,
        );
    }
    let patch = traj.patch.clone();
    match tampered_paths(inst, &patch) {
        Ok(t) if !t.is_empty() => {
            return reject(
                "tampered_tests",
                format!("the patch changes test files: {}", t.join(", ")),
                false,
            );
        }
        Ok(_) => {}
        Err(e) => return reject("error", e.to_string(), false),
    }
    // The final verdict on exactly the stored patch, from its own fresh
    // environment, independent of the in-loop gate, graded strictly.
    let verdict = match shared.verifier.verify(inst, &patch).await {
        Ok(v) => {
            info.saw(&v);
            v
        }
        Err(e) => {
            let r = e.is_retryable();
            return reject("eval_error", format!("final verification: {e}"), r);
        }
    };
    if let Some(e) = &verdict.error {
        return reject("eval_error", e.clone(), false);
    }
    let accepted = shared.accept_flagged && verdict.resolved_official;
    if !verdict.flags.is_empty() && !accepted {
        return reject(
            "flagged",
            format!("final verification: {}", verdict.flags.join("; ")),
            false,
        );
    }
    if passes(&verdict, shared.accept_flagged) {
        info.runs = 1;
    }
    if !passes(&verdict, shared.accept_flagged) {
        return reject(
            "unresolved",
            format!(
                "final verification: FAIL_TO_PASS {}/{}, PASS_TO_PASS {}/{}",
                verdict.f2p_passed, verdict.f2p_total, verdict.p2p_passed, verdict.p2p_total
            ),
            false,
        );
    }
    // A pass must repeat, each time on a fresh environment.
    for run in 2..=shared.gate_runs {
        let again = match shared.verifier.verify(inst, &patch).await {
            Ok(v) => {
                info.add_flags(&v.flags);
                v
            }
            Err(e) => {
                let r = e.is_retryable();
                return reject("eval_error", format!("final verification {run}: {e}"), r);
            }
        };
        if !passes(&again, shared.accept_flagged) {
            return reject(
                "flaky",
                format!(
                    "final verification passed, then run {run} of {} did not: FAIL_TO_PASS {}/{}, PASS_TO_PASS {}/{}{}{}",
                    shared.gate_runs,
                    again.f2p_passed,
                    again.f2p_total,
                    again.p2p_passed,
                    again.p2p_total,
                    again
                        .error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default(),
                    if again.flags.is_empty() {
                        String::new()
                    } else {
                        format!("; flags: {}", again.flags.join("; "))
                    }
                ),
                false,
            );
        }
        info.runs += 1;
    }
    if !verdict.flags.is_empty() {
        tracing::warn!(instance = %inst.instance_id, flags = ?verdict.flags, "kept a flagged trajectory (--accept-flagged)");
    }
    Decision::Keep
}

/// The model id the server reported: the last `server reported model:`
/// note of the episode, or `fallback` when the server reported none.
fn served_model(traj: &Trajectory, fallback: &str) -> String {
    traj.attempts
        .iter()
        .flat_map(|a| &a.events)
        .filter_map(|e| match e {
            crate::engine::Event::ModelCall { notes, .. } => Some(notes),
            _ => None,
        })
        .flatten()
        .filter_map(|n| n.strip_prefix(crate::model::remote::SERVED_MODEL_NOTE))
        .next_back()
        .map(str::to_string)
        .unwrap_or_else(|| fallback.to_string())
}

/// A corpus row for a finished episode: kept (`reason` empty) or for the
/// rejected split (`reason` set, `resolved` false, the last non-empty
/// attempt patch when no patch was verified).
#[allow(clippy::too_many_arguments)]
fn build_row(
    shared: &Shared,
    inst: &Instance,
    license: &str,
    sample: u32,
    traj: &Trajectory,
    info: &JudgeInfo,
    reason: &str,
    image_digest: Option<String>,
) -> Result<CorpusRow, corpus::CorpusError> {
    let kept = reason.is_empty();
    let patch = if kept || !traj.patch.is_empty() {
        traj.patch.clone()
    } else {
        // The last attempt that changed something (a later empty
        // resubmit must not hide what was tried).
        traj.attempts
            .iter()
            .rev()
            .map(|a| &a.patch)
            .find(|p| !p.is_empty())
            .cloned()
            .unwrap_or_default()
    };
    let messages = serde_json::Value::Array(traj.openai_messages());
    let tools = serde_json::Value::Array(traj.tools.clone());
    let model = traj
        .verified_by
        .clone()
        .or_else(|| traj.attempts.last().map(|a| a.model.clone()))
        .unwrap_or_default();
    CorpusRow {
        trajectory_id: String::new(),
        instance_id: inst.instance_id.clone(),
        dataset: shared.dataset_name.clone(),
        repo: inst.repo.clone(),
        base_commit: inst.base_commit.clone(),
        model_id: served_model(traj, &model),
        model,
        resolved: kept,
        attempts: traj.attempts.len() as i32,
        steps: traj.steps() as i32,
        prompt_tokens: traj.usage.prompt_tokens as i64,
        completion_tokens: traj.usage.completion_tokens as i64,
        wall_s: traj.wall_s,
        patch_sha256: String::new(),
        patch,
        messages: messages.to_string(),
        tools: tools.to_string(),
        provenance: "public".into(),
        license: license.to_string(),
        created_at: Utc::now(),
        engine_version: crate::ENGINE_VERSION.to_string(),
        sample: sample as i32,
        verified_by: info
            .verified_by
            .clone()
            .unwrap_or_else(|| shared.verifier.describe()),
        cost_usd: traj.usage.cost_usd,
        patch_norm_sha256: String::new(),
        image_digest: image_digest.unwrap_or_default(),
        dataset_sha256: shared.provenance.dataset_sha256.clone(),
        engine_commit: corpus::ENGINE_COMMIT.to_string(),
        teacher_spec: shared.provenance.teacher_spec.clone(),
        sampling: shared.provenance.sampling.clone(),
        system_prompt_sha256: String::new(),
        tools_sha256: String::new(),
        sandbox: shared.env.kind().to_string(),
        verifier_mode: if shared.accept_flagged {
            "official+flags".into()
        } else {
            "strict".into()
        },
        verify_targets_passed: info.targets_passed,
        verify_targets_total: info.targets_total,
        verify_baseline_kept: info.baseline_kept,
        verify_baseline_total: info.baseline_total,
        verify_runs: info.runs,
        flags: info.flags.clone(),
        provenance_sha256: String::new(),
        reason: reason.to_string(),
    }
    .seal()
}

/// Whether a final verification counts as a pass: the strict verdict, or
/// with `--accept-flagged` the official one.
fn passes(v: &Verdict, accept_flagged: bool) -> bool {
    v.error.is_none() && (v.resolved || (accept_flagged && v.resolved_official))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_ids() {
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("x").is_err());
        assert!(parse_shard("0/0").is_err());
        let ids: Vec<String> = (0..200).map(|i| format!("repo__x-{i}")).collect();
        let mut seen = 0;
        for s in 0..3 {
            let part: Vec<&String> = ids.iter().filter(|id| in_shard(id, (s, 3))).collect();
            assert!(!part.is_empty());
            seen += part.len();
        }
        assert_eq!(seen, ids.len());
    }
}
