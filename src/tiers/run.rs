//! `tiers run`: every (model, task, sample) episode through the same engine
//! and gate as `airgate solve`, each in a fresh scratch workspace, appended
//! to `results.jsonl` as it finishes.
//!
//! Episodes run in parallel up to `jobs`, and per model up to what its
//! backend allows ([`super::probe::concurrency`]). An episode that was cut
//! short (the model server went away) is reported but not recorded, so the
//! next run with the same `--out` retries it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::TiersError;
use super::probe;
use super::results::{ResultRow, ResultsWriter, read_rows};
use super::suite::Task;
use crate::engine::{self, EngineConfig, Outcome, Trajectory};
use crate::model::provider;
use crate::model::spec::{PolicyContext, build_policy};
use crate::model::{ModelSpec, Policy};
use crate::sandbox::{Sandbox, Workspace};

/// Consecutive cut-short episodes after which a model's remaining tasks are skipped.
pub const MAX_CONSECUTIVE_ABORTS: u32 = 3;

pub use crate::sandbox::SandboxChoice;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The tasks to run.
    pub tasks: Vec<Task>,
    /// Model specs as given on the command line.
    pub models: Vec<String>,
    /// Episodes per (model, task).
    pub samples: u32,
    /// The run directory (`results.jsonl`, `trajectories/`).
    pub out: PathBuf,
    /// Episodes in flight at once, over every model.
    pub jobs: usize,
    /// Where commands run.
    pub sandbox: SandboxChoice,
    /// The image for `--sandbox docker` (the default image when `None`).
    pub image: Option<String>,
    /// Step and attempt limits.
    pub engine: EngineConfig,
    /// Directory holding `configs/`.
    pub config_root: PathBuf,
    /// Draw the progress bar.
    pub progress: bool,
    /// The terminal display the run's bar joins (the live display's
    /// per-episode lines are drawn in it); `None` draws the bar alone.
    pub bars: Option<indicatif::MultiProgress>,
}

/// A model ready to run: resolved, probed, with its policies.
pub struct ModelPlan {
    /// The spec as given (the `model` column).
    pub label: String,
    spec: ModelSpec,
    resolved: ModelSpec,
    limit: usize,
    // Server-backed policies are built once and lent to episodes; offline
    // ones (script, reference) are built per episode since they carry the
    // task's patch or a script cursor.
    pool: Mutex<Vec<Box<dyn Policy>>>,
    sem: Semaphore,
    aborts_in_a_row: AtomicU32,
}

impl std::fmt::Debug for ModelPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPlan")
            .field("label", &self.label)
            .field("resolved", &self.resolved)
            .field("limit", &self.limit)
            .finish()
    }
}

impl ModelPlan {
    /// Episodes of this model allowed at once.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Parses, resolves and probes every model, and builds the server-backed
/// policies, before any task starts. The first failure is returned as one
/// line naming the model.
pub async fn prepare(cfg: &RunConfig) -> Result<Vec<Arc<ModelPlan>>, TiersError> {
    if cfg.models.is_empty() {
        return Err(TiersError::Usage("give at least one --model SPEC".into()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut plans = Vec::new();
    for label in &cfg.models {
        if !seen.insert(label.clone()) {
            return Err(TiersError::Usage(format!("--model {label} is given twice")));
        }
        let fail = |m: String| TiersError::Usage(format!("model `{label}`: {m}"));
        let spec = ModelSpec::parse(label).map_err(|e| fail(e.to_string()))?;
        let ctx = PolicyContext {
            solution_patch: None,
            config_root: Some(cfg.config_root.clone()),
        };
        let resolved = provider::resolve(&spec, &cfg.config_root)
            .map_err(|e| fail(e.to_string()))?
            .spec;
        if !probe::is_offline(&resolved) {
            provider::probe(&spec, &ctx).await.map_err(|e| {
                fail(format!(
                    "{e}; start the server (or fix the spec) or drop this --model"
                ))
            })?;
        }
        let limit = probe::concurrency(&resolved, cfg.jobs);
        let mut pool = Vec::new();
        if probe::is_offline(&resolved) {
            // Build one now so that a bad script or a missing patch fails here.
            let ctx = PolicyContext {
                solution_patch: cfg.tasks.first().map(Task::solution_patch),
                config_root: Some(cfg.config_root.clone()),
            };
            let mut p = build_policy(&spec, &ctx)
                .await
                .map_err(|e| fail(e.to_string()))?;
            p.shutdown().await;
        } else {
            for _ in 0..limit {
                let ctx = PolicyContext {
                    solution_patch: None,
                    config_root: Some(cfg.config_root.clone()),
                };
                pool.push(
                    build_policy(&spec, &ctx)
                        .await
                        .map_err(|e| fail(e.to_string()))?,
                );
            }
        }
        plans.push(Arc::new(ModelPlan {
            label: label.clone(),
            spec,
            resolved,
            limit,
            pool: Mutex::new(pool),
            sem: Semaphore::new(limit),
            aborts_in_a_row: AtomicU32::new(0),
        }));
    }
    Ok(plans)
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Episodes run and recorded now.
    pub ran: usize,
    /// Episodes skipped because `results.jsonl` already had them.
    pub resumed: usize,
    /// Episodes that failed or were cut short (not recorded; a rerun retries them).
    pub errors: Vec<String>,
    /// Every row of the run directory after this run.
    pub rows: Vec<ResultRow>,
}

enum EpisodeEnd {
    Done(Box<ResultRow>),
    NotRecorded {
        label: String,
        task: String,
        why: String,
    },
}

/// Runs every pending episode. Ctrl-C stops scheduling, keeps the rows
/// written so far, and returns `Interrupted`.
pub async fn run_suite(cfg: &RunConfig, plans: &[Arc<ModelPlan>]) -> Result<RunSummary, RunStop> {
    let mut writer = ResultsWriter::open(&cfg.out)?;
    let out = cfg.out.canonicalize().map_err(|e| TiersError::Io {
        context: format!("resolving {}", cfg.out.display()),
        source: e,
    })?;
    let jobs = Arc::new(Semaphore::new(cfg.jobs.max(1)));
    let mut summary = RunSummary::default();
    let mut set: JoinSet<EpisodeEnd> = JoinSet::new();
    let mut pending = 0u64;
    for plan in plans {
        for task in &cfg.tasks {
            for sample in 0..cfg.samples.max(1) {
                if writer.is_done(&plan.label, task.id(), sample) {
                    summary.resumed += 1;
                    continue;
                }
                pending += 1;
                let plan = Arc::clone(plan);
                let task = task.clone();
                let jobs = Arc::clone(&jobs);
                let engine = cfg.engine.clone();
                let sandbox = (cfg.sandbox, cfg.image.clone());
                let root = cfg.config_root.clone();
                let out = out.clone();
                set.spawn(async move {
                    episode(plan, task, sample, jobs, engine, sandbox, root, out).await
                });
            }
        }
    }
    let bar = match (&cfg.bars, cfg.progress) {
        (Some(multi), true) => multi.insert(0, ProgressBar::new(pending)),
        (None, true) => ProgressBar::new(pending),
        (_, false) => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    if summary.resumed > 0 {
        bar.println(format!(
            "resuming {}: {} episode(s) already in results.jsonl",
            cfg.out.display(),
            summary.resumed
        ));
    }
    let mut tally: Vec<(String, u32, u32)> =
        plans.iter().map(|p| (p.label.clone(), 0, 0)).collect();
    for r in read_rows(&cfg.out)? {
        if let Some(t) = tally.iter_mut().find(|t| t.0 == r.model) {
            t.1 += u32::from(r.passed);
            t.2 += 1;
        }
    }
    loop {
        let next = tokio::select! {
            n = set.join_next() => n,
            _ = tokio::signal::ctrl_c() => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                bar.abandon_with_message("interrupted");
                shutdown(plans).await;
                return Err(RunStop::Interrupted);
            }
        };
        let Some(joined) = next else { break };
        bar.inc(1);
        match joined {
            Ok(EpisodeEnd::Done(row)) => {
                writer.append(&row)?;
                summary.ran += 1;
                if let Some(t) = tally.iter_mut().find(|t| t.0 == row.model) {
                    t.1 += u32::from(row.passed);
                    t.2 += 1;
                }
                let counts: Vec<String> = tally
                    .iter()
                    .map(|(m, p, n)| format!("{m} {p}/{n}"))
                    .collect();
                bar.set_message(format!(
                    "{} · {} {} | passed: {}",
                    row.model,
                    row.task,
                    row.outcome,
                    counts.join(", ")
                ));
            }
            Ok(EpisodeEnd::NotRecorded { label, task, why }) => {
                bar.println(format!("{label} · {task}: {why}"));
                summary.errors.push(format!("{label} · {task}: {why}"));
            }
            Err(e) => summary
                .errors
                .push(format!("an episode task panicked: {e}")),
        }
    }
    bar.finish_and_clear();
    shutdown(plans).await;
    summary.rows = read_rows(&cfg.out)?;
    Ok(summary)
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunStop {
    /// Ctrl-C.
    #[error("interrupted; rerun with the same --out to resume")]
    Interrupted,
    /// Anything else.
    #[error(transparent)]
    Failed(#[from] TiersError),
}

async fn shutdown(plans: &[Arc<ModelPlan>]) {
    for plan in plans {
        let policies: Vec<Box<dyn Policy>> = match plan.pool.lock() {
            Ok(mut g) => g.drain(..).collect(),
            Err(_) => continue,
        };
        for mut p in policies {
            p.shutdown().await;
        }
    }
}

/// A model label for progress lines: a `script:` path by its file name.
fn short_model(label: &str) -> String {
    match label.strip_prefix("script:") {
        Some(path) => format!("script:{}", path.rsplit('/').next().unwrap_or(path)),
        None => label.to_string(),
    }
}

/// Directory-safe form of a model label.
pub fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.chars().take(80).collect()
}

#[allow(clippy::too_many_arguments)]
async fn episode(
    plan: Arc<ModelPlan>,
    task: Task,
    sample: u32,
    jobs: Arc<Semaphore>,
    engine_cfg: EngineConfig,
    sandbox: (SandboxChoice, Option<String>),
    config_root: PathBuf,
    out: PathBuf,
) -> EpisodeEnd {
    let not_recorded = |why: String| EpisodeEnd::NotRecorded {
        label: plan.label.clone(),
        task: task.id().to_string(),
        why,
    };
    let Ok(_model_permit) = plan.sem.acquire().await else {
        return not_recorded("the run is shutting down".into());
    };
    let Ok(_job_permit) = jobs.acquire().await else {
        return not_recorded("the run is shutting down".into());
    };
    if plan.aborts_in_a_row.load(Ordering::SeqCst) >= MAX_CONSECUTIVE_ABORTS {
        return not_recorded(format!(
            "skipped: {MAX_CONSECUTIVE_ABORTS} episodes of this model in a row were cut short"
        ));
    }
    let started = Instant::now();
    // The live display tells episodes apart by model, task and sample.
    let mut engine_cfg = engine_cfg;
    let label = format!(
        "{}/{} s{sample} [{}]",
        task.tier(),
        task.id(),
        short_model(&plan.label)
    );
    let observer = engine_cfg.observer.take().map(|o| {
        let label = label.clone();
        engine::Observer(Arc::new(move |_: &str, ev: &engine::Live| {
            (o.0)(&label, ev)
        }))
    });
    engine_cfg.observer = observer.clone();
    let result = run_episode(&plan, &task, &engine_cfg, &sandbox, &config_root).await;
    if let Some(o) = &observer {
        let outcome = result.as_ref().ok().map(|t| t.outcome);
        (o.0)(&label, &engine::Live::EpisodeEnd { outcome });
    }
    match result {
        Err(e) => not_recorded(format!("failed: {e}")),
        Ok(traj) => {
            let rel = PathBuf::from("trajectories")
                .join(slug(&plan.label))
                .join(task.id())
                .join(format!("s{sample}"));
            let saved = traj.save(&out.join(&rel));
            if let Some(reason) = &traj.aborted {
                plan.aborts_in_a_row.fetch_add(1, Ordering::SeqCst);
                return not_recorded(format!(
                    "cut short, not recorded (rerun with the same --out to retry): {reason}"
                ));
            }
            plan.aborts_in_a_row.store(0, Ordering::SeqCst);
            if let Err(e) = saved {
                return not_recorded(format!("cannot save the trajectory: {e}"));
            }
            EpisodeEnd::Done(Box::new(row_of(
                &plan.label,
                &task,
                sample,
                &traj,
                started.elapsed().as_secs_f64(),
                &rel.join("trajectory.json"),
            )))
        }
    }
}

async fn run_episode(
    plan: &ModelPlan,
    task: &Task,
    engine_cfg: &EngineConfig,
    (sandbox, image): &(SandboxChoice, Option<String>),
    config_root: &Path,
) -> Result<Trajectory, TiersError> {
    let gate = task.gate()?;
    let patch_policy = task.patch_policy()?;
    // Batch runs: commands the approval rules hold back are denied.
    let job = engine::Job::new(
        task.toml.statement.clone(),
        format!("tiers:{}/{}", task.tier(), task.id()),
        patch_policy,
        Some(crate::tools::approval::ApprovalMode::Deny),
        None,
    )
    .map_err(|e| TiersError::Usage(e.to_string()))?;
    let repo = task.repo();
    let ws = tokio::task::spawn_blocking(move || Workspace::copy_from(&repo))
        .await
        .map_err(|e| TiersError::Usage(format!("workspace task failed: {e}")))??;
    let sb: Box<dyn Sandbox> = sandbox.open(&ws, image.as_deref()).await?;
    let policy = if probe::is_offline(&plan.resolved) {
        let ctx = PolicyContext {
            solution_patch: Some(task.solution_patch()),
            config_root: Some(config_root.to_path_buf()),
        };
        build_policy(&plan.spec, &ctx).await?
    } else {
        let lent = plan.pool.lock().ok().and_then(|mut g| g.pop());
        match lent {
            Some(p) => p,
            None => {
                return Err(TiersError::Usage(format!(
                    "no free policy for model `{}` (internal: pool smaller than its limit)",
                    plan.label
                )));
            }
        }
    };
    let mut stages = vec![policy];
    let ep = job.episode(sb.as_ref(), &ws, &gate);
    let result = engine::run_episode(&ep, engine_cfg, &mut stages).await;
    let _ = sb.close().await;
    if let Some(mut p) = stages.pop() {
        if probe::is_offline(&plan.resolved) {
            p.shutdown().await;
        } else if let Ok(mut g) = plan.pool.lock() {
            g.push(p);
        }
    }
    result.map_err(|e| match e {
        engine::EngineError::Sandbox(s) => TiersError::Sandbox(s),
        engine::EngineError::Model(m) => TiersError::Model(m),
    })
}

/// Test-run time of a trajectory: the baseline and every attempt's gate.
pub fn test_seconds(traj: &Trajectory) -> f64 {
    let ms: u64 = traj.baseline.iter().map(|g| g.duration_ms).sum::<u64>()
        + traj
            .attempts
            .iter()
            .filter_map(|a| a.gate.as_ref())
            .map(|g| g.duration_ms)
            .sum::<u64>();
    ms as f64 / 1000.0
}

fn row_of(
    label: &str,
    task: &Task,
    sample: u32,
    traj: &Trajectory,
    wall_s: f64,
    rel: &Path,
) -> ResultRow {
    ResultRow {
        model: label.to_string(),
        task: task.id().to_string(),
        tier: task.tier().to_string(),
        language: task.language().to_string(),
        sample,
        outcome: traj.outcome.as_str().to_string(),
        passed: traj.outcome == Outcome::Verified,
        attempts: traj.attempts.len() as u32,
        steps: traj.steps(),
        prompt_tokens: traj.usage.prompt_tokens,
        completion_tokens: traj.usage.completion_tokens,
        wall_s,
        test_s: test_seconds(traj),
        repeated_calls: traj.repeated_calls(),
        aborted: traj.aborted.clone(),
        trajectory: rel.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_path_safe() {
        assert_eq!(slug("script:/a b/t.jsonl"), "script__a_b_t.jsonl");
        assert_eq!(slug("ollama:qwen2.5-coder:7b"), "ollama_qwen2.5-coder_7b");
    }
}
