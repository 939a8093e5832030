//! `airgate swebench eval`: the official-style evaluation in Docker.
//!
//! For each instance with a non-empty prediction: a fresh container from
//! the instance image, the patch copied in as a tar stream and applied by
//! the official chain, `eval.sh` run under the timeout, the log graded by
//! [`crate::swebench::grading`], and `report.json` written in the official
//! layout `logs/run_evaluation/<run_id>/<model>/<instance>/`. An existing
//! `report.json` skips the instance (resume). Workers run on tokio; a
//! progress bar shows resolved/error/done.
//!
//! Infrastructure failures (image missing, daemon gone, OOM) are recorded in
//! `run_instance.log` as `>>>>> Infrastructure Failure: <reason>` and named
//! in the aggregate report's `infra_failure_ids`/`failure_reasons`, apart
//! from model failures (unresolved, patch that does not apply).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::dataset::Dataset;
use super::eval_script::eval_script;
use super::grading;
use super::instance::Instance;
use super::logs;
use super::patch_apply::{CONTAINER_PATCH_FILE, apply_chain};
use super::predictions::Prediction;
use super::report::{self, AggregateEntry, AggregateReport, InstanceOutcome, StrictEntry};
use super::strict::StrictGrader;
use crate::error::Retryable;
use crate::sandbox::docker::{self, Container, ContainerSpec, DockerConfig, container_name};
use crate::sandbox::{ExecRequest, SandboxError};
use crate::swebench::instance::image_for;

/// Prefix of the line naming an infrastructure failure in `run_instance.log`.
pub const INFRA_FAILURE_LINE: &str = ">>>>> Infrastructure Failure:";
/// Prefix of the `run_instance.log` line naming the image's content id
/// (`Image digest: sha256:... (<image name>)`).
pub const IMAGE_DIGEST_LINE: &str = "Image digest:";
/// Bytes kept from each end of the eval output (the middle is dropped).
const EVAL_CAPTURE: usize = 64 << 20;

/// Run-wide options (the official CLI's, plus container settings).
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Run id: log folder and aggregate report name.
    pub run_id: String,
    /// Parallel containers.
    pub max_workers: usize,
    /// Per-instance limit for `eval.sh`.
    pub timeout: Duration,
    /// Keep containers for debugging.
    pub keep: bool,
    /// Folder under which `logs/run_evaluation` is written (the cwd officially).
    pub root: PathBuf,
    /// Where the aggregate report goes.
    pub report_dir: PathBuf,
    /// Image namespace (`swebench` for the published names); `None` for local names.
    pub namespace: Option<String>,
    /// Limits and isolation.
    pub docker: DockerConfig,
    /// Dataset path, recorded in `run.json`.
    pub dataset_label: String,
    /// Draw a progress bar.
    pub progress: bool,
    /// `--strict`: grade strictly and run the empty-patch control.
    pub strict: Option<Arc<StrictEval>>,
}

/// Settings of strict grading (`swebench eval --strict`).
#[derive(Debug)]
pub struct StrictEval {
    /// The patch and log checks.
    pub grader: StrictGrader,
    /// Where empty-patch control results are cached, per instance and
    /// image id (`<dir>/<instance>/<image id>/control.json`, with its logs).
    pub control_dir: PathBuf,
}

/// The kind of infrastructure failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfraKind {
    /// The instance image is not present (nothing can be pulled here).
    ImageMissing,
    /// The Docker daemon went away or failed.
    DaemonUnavailable,
    /// The container ran out of memory.
    OutOfMemory,
}

impl InfraKind {
    /// Reason name in the aggregate report (official names where they exist).
    pub fn reason(self) -> &'static str {
        match self {
            InfraKind::ImageMissing => "image_missing",
            InfraKind::DaemonUnavailable => "container_unavailable",
            InfraKind::OutOfMemory => "out_of_memory",
        }
    }

    /// The kind a reason name stands for.
    pub fn from_reason(s: &str) -> Option<Self> {
        [
            Self::ImageMissing,
            Self::DaemonUnavailable,
            Self::OutOfMemory,
        ]
        .into_iter()
        .find(|k| k.reason() == s)
    }
}

/// What happened to one instance in this invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// Graded, resolved.
    Resolved,
    /// Graded, not resolved.
    Unresolved,
    /// A report from an earlier run exists; skipped.
    Resumed {
        /// Its verdict.
        resolved: bool,
    },
    /// The model patch did not apply (a model failure; no report).
    PatchApplyFailed,
    /// `eval.sh` exceeded the timeout (no report).
    TimedOut,
    /// The environment broke (no report).
    Infra(InfraKind),
    /// Anything else (bad row, unsupported spec...; no report).
    Error,
}

/// One instance's result.
#[derive(Debug, Clone)]
pub struct InstanceRun {
    /// Instance id.
    pub instance_id: String,
    /// Outcome.
    pub status: RunStatus,
    /// Error text for the non-graded outcomes.
    pub message: Option<String>,
}

/// The whole run.
#[derive(Debug)]
pub struct EvalSummary {
    /// Instances run or skipped in this invocation.
    pub runs: Vec<InstanceRun>,
    /// The aggregate report.
    pub aggregate: AggregateReport,
    /// Where it was written.
    pub report_path: PathBuf,
}

/// Run-level failures (per-instance failures are [`RunStatus`]es).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Docker unreachable at start.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Writing logs or reports failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being written.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Ctrl-C: containers were removed; rerun with the same run id to resume.
    #[error(
        "interrupted: all containers removed; rerun with the same --run-id to resume ({done} instance(s) finished)"
    )]
    Interrupted {
        /// Instances finished before the interrupt.
        done: usize,
    },
    /// No predictions at all.
    #[error("no predictions to evaluate")]
    NoPredictions,
    /// The empty-patch control could not run.
    #[error("empty-patch control of {instance_id}: {message}")]
    Control {
        /// The instance.
        instance_id: String,
        /// What failed.
        message: String,
    },
}

impl Retryable for EvalError {
    fn is_retryable(&self) -> bool {
        matches!(self, EvalError::Sandbox(e) if e.is_retryable())
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EvalError {
    let context = context.into();
    move |source| EvalError::Io { context, source }
}

/// `run_instance.log`, in the official logger's line format.
struct InstanceLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl InstanceLog {
    fn create(path: PathBuf) -> std::io::Result<Self> {
        let file = std::fs::File::create(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    fn write(&self, level: &str, msg: &str) {
        let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{ts} - {level} - {msg}");
        }
    }

    fn info(&self, msg: &str) {
        self.write("INFO", msg);
    }

    fn error(&self, msg: &str) {
        self.write("ERROR", msg);
    }
}

/// Why an instance stopped early.
enum Failure {
    Sandbox(SandboxError),
    PatchApply(String),
    Timeout(u64),
    Other(String),
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        Failure::Sandbox(e)
    }
}

struct Ctx {
    docker: Docker,
    opts: EvalOptions,
    /// Container removals run in the background (the next instance starts
    /// meanwhile); the run waits for all of them before it reports.
    removals: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Runs the evaluation. `instance_ids` narrows the dataset (empty = all).
pub async fn run_eval(
    dataset: &Dataset,
    predictions: &[Prediction],
    instance_ids: &[String],
    opts: EvalOptions,
) -> Result<EvalSummary, EvalError> {
    if predictions.is_empty() {
        return Err(EvalError::NoPredictions);
    }
    let full: Vec<&Instance> = dataset
        .instances
        .iter()
        .filter(|i| instance_ids.is_empty() || instance_ids.contains(&i.instance_id))
        .collect();
    let preds: HashMap<&str, &Prediction> = predictions
        .iter()
        .map(|p| (p.instance_id.as_str(), p))
        .collect();
    write_run_metadata(&opts)?;

    // Instances to run: with a non-empty prediction; resumed ones are
    // reported as such by run_instance without touching Docker.
    let todo: Vec<(Instance, Prediction)> = full
        .iter()
        .filter_map(|i| {
            preds
                .get(i.instance_id.as_str())
                .filter(|p| !p.is_empty_patch())
                .map(|p| ((*i).clone(), (*p).clone()))
        })
        .collect();
    let digest_dirs: Vec<(String, PathBuf)> = todo
        .iter()
        .map(|(i, p)| (i.instance_id.clone(), log_dir(&opts, i, p)))
        .collect();
    let pending = todo
        .iter()
        .filter(|(i, p)| !report_done(&opts, &report_path(&opts, i, p), &i.instance_id))
        .count();
    if pending < todo.len() {
        eprintln!(
            "{} instances already run, skipping...",
            todo.len() - pending
        );
    }

    let mut runs = Vec::new();
    if !todo.is_empty() {
        let docker = docker::connect().await?;
        let ctx = Arc::new(Ctx {
            docker,
            opts: opts.clone(),
            removals: Mutex::new(Vec::new()),
        });
        let bar = progress_bar(todo.len() as u64, opts.progress);
        let sem = Arc::new(Semaphore::new(opts.max_workers.max(1)));
        let mut set = JoinSet::new();
        for (inst, pred) in todo {
            let ctx = ctx.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                run_instance(&ctx, &inst, &pred).await
            });
        }
        let (mut resolved, mut errors) = (0usize, 0usize);
        let interrupted = loop {
            tokio::select! {
                next = set.join_next() => match next {
                    None => break false,
                    Some(Ok(run)) => {
                        match &run.status {
                            RunStatus::Resolved | RunStatus::Resumed { resolved: true } => resolved += 1,
                            RunStatus::Unresolved | RunStatus::Resumed { resolved: false } => {}
                            _ => {
                                errors += 1;
                                if let Some(m) = &run.message {
                                    bar.println(m);
                                }
                            }
                        }
                        bar.inc(1);
                        bar.set_message(format!("resolved {resolved} · error {errors}"));
                        runs.push(run);
                    }
                    Some(Err(e)) => {
                        errors += 1;
                        bar.inc(1);
                        tracing::error!("an eval worker failed: {e}");
                    }
                },
                _ = tokio::signal::ctrl_c() => break true,
            }
        };
        if interrupted {
            bar.abandon_with_message("interrupted; removing containers");
            set.abort_all();
            // Aborted tasks drop their containers (the Drop guard removes them).
            while set.join_next().await.is_some() {}
            let pending = ctx
                .removals
                .lock()
                .map(|mut l| std::mem::take(&mut *l))
                .unwrap_or_default();
            for task in pending {
                let _ = task.await;
            }
            docker::remove_all_live().await;
            return Err(EvalError::Interrupted { done: runs.len() });
        }
        bar.finish_with_message(format!("resolved {resolved} · error {errors}"));
        let removals = ctx
            .removals
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        for task in removals {
            let _ = task.await;
        }
    }

    record_image_digests(&opts, &digest_dirs)?;
    let entries: Vec<AggregateEntry> = predictions
        .iter()
        .map(|p| aggregate_entry(&opts, dataset, p))
        .collect();
    let dataset_ids: Vec<String> = full.iter().map(|i| i.instance_id.clone()).collect();
    let mut aggregate =
        report::aggregate_report_with(&dataset_ids, &entries, opts.strict.is_some());
    match engine_leftovers(&opts.run_id, &full).await {
        Ok(left) => aggregate = aggregate.with_engine(left),
        // The official harness needs its client anyway; here a run whose
        // instances were all resumed or empty may have no engine, and then
        // the report simply lacks the engine keys (as without a client).
        Err(e) => tracing::warn!("cannot list leftover containers and images: {e}"),
    }
    let model = predictions[0]
        .model_name_or_path
        .clone()
        .unwrap_or_else(|| "None".into());
    std::fs::create_dir_all(&opts.report_dir)
        .map_err(io_err(format!("creating {}", opts.report_dir.display())))?;
    let report_path = opts
        .report_dir
        .join(report::aggregate_report_name(&model, &opts.run_id));
    std::fs::write(&report_path, aggregate.to_json())
        .map_err(io_err(format!("writing {}", report_path.display())))?;
    Ok(EvalSummary {
        runs,
        aggregate,
        report_path,
    })
}

/// The official report's engine check: containers whose name holds the
/// run id (kept or failed removals) and dataset `image`s still present.
async fn engine_leftovers(
    run_id: &str,
    full: &[&Instance],
) -> Result<report::EngineLeftovers, SandboxError> {
    let docker = docker::connect().await?;
    let containers = docker::container_names_containing(&docker, run_id).await?;
    let tags = docker::image_tags(&docker).await?;
    let images = full
        .iter()
        .filter_map(|i| i.image.as_ref())
        .filter(|img| tags.contains(*img))
        .cloned()
        .collect();
    Ok(report::EngineLeftovers {
        unstopped_containers: containers.into_iter().collect(),
        unremoved_images: images,
    })
}

fn progress_bar(len: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} done · {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("resolved 0 · error 0");
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

fn write_run_metadata(opts: &EvalOptions) -> Result<(), EvalError> {
    let dir = logs::run_dir(&opts.root, &opts.run_id);
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let meta = serde_json::json!({
        "dataset": opts.dataset_label,
        "split": "test",
        "task_repo": null,
        "created_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
    });
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n";
    std::fs::write(dir.join(logs::LOG_RUN_METADATA), text).map_err(io_err("writing run.json"))
}

/// The content id (`sha256:...`, the engine's image `Id`) of the image
/// `instance` is evaluated in ([`image_for`]); `Ok(None)` when the image is
/// not present. A tag can be moved; this id names the exact bytes a verdict
/// was computed on, so corpus rows and validation records carry it.
/// After an eval, prefer [`image_digest_from_log`]: it is the id of the
/// image the container really ran.
pub async fn instance_image_digest(
    docker: &Docker,
    instance: &Instance,
    namespace: Option<&str>,
) -> Result<Option<String>, SandboxError> {
    crate::sandbox::docker::image_digest(docker, &image_for(instance, namespace)).await
}

/// The image content id an instance was evaluated on, read from its
/// `run_instance.log` (the last [`IMAGE_DIGEST_LINE`]); `None` when the
/// container never started. For callers that keep verdicts (the factory's
/// corpus rows) as well as for `run.json`.
pub fn image_digest_from_log(dir: &Path) -> Option<String> {
    let log = std::fs::read_to_string(dir.join(logs::LOG_INSTANCE)).ok()?;
    log.lines().rev().find_map(|l| {
        let rest = &l[l.find(IMAGE_DIGEST_LINE)? + IMAGE_DIGEST_LINE.len()..];
        let digest = rest.split_whitespace().next()?;
        digest.starts_with("sha256:").then(|| digest.to_string())
    })
}

/// Adds `image_digests` (instance id → `sha256:...`) to the run's
/// `run.json`, from the instances' logs (resumed ones included).
fn record_image_digests(opts: &EvalOptions, dirs: &[(String, PathBuf)]) -> Result<(), EvalError> {
    let path = logs::run_dir(&opts.root, &opts.run_id).join(logs::LOG_RUN_METADATA);
    let text = std::fs::read_to_string(&path).map_err(io_err("reading run.json"))?;
    let mut meta: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_default();
    let digests: serde_json::Map<String, serde_json::Value> = dirs
        .iter()
        .filter_map(|(id, dir)| {
            image_digest_from_log(dir).map(|d| (id.clone(), serde_json::Value::String(d)))
        })
        .collect();
    meta.insert("image_digests".into(), serde_json::Value::Object(digests));
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(io_err("writing run.json"))
}

fn log_dir(opts: &EvalOptions, inst: &Instance, pred: &Prediction) -> PathBuf {
    logs::instance_log_dir(
        &opts.root,
        &opts.run_id,
        pred.model_name_or_path.as_deref(),
        &inst.instance_id,
    )
}

fn report_path(opts: &EvalOptions, inst: &Instance, pred: &Prediction) -> PathBuf {
    log_dir(opts, inst, pred).join(logs::LOG_REPORT)
}

/// Whether an existing report ends this instance's work (resume): any
/// report in the default mode, only a strict one with `--strict`.
fn report_done(opts: &EvalOptions, path: &Path, instance_id: &str) -> bool {
    if !path.is_file() {
        return false;
    }
    if opts.strict.is_none() {
        return true;
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| report::read_strict_fields(&t, instance_id))
        .is_some()
}

/// Reads `resolved` from an existing `report.json`.
fn read_resolved(path: &Path, instance_id: &str) -> Option<bool> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    v.get(instance_id)?.get("resolved")?.as_bool()
}

/// The aggregate's view of one prediction, read from the logs on disk (so
/// resumed instances count the same as fresh ones).
fn aggregate_entry(opts: &EvalOptions, dataset: &Dataset, p: &Prediction) -> AggregateEntry {
    let empty_patch = p.is_empty_patch();
    let dir = logs::instance_log_dir(
        &opts.root,
        &opts.run_id,
        p.model_name_or_path.as_deref(),
        &p.instance_id,
    );
    let report_file = dir.join(logs::LOG_REPORT);
    let mut outcome = match read_resolved(&report_file, &p.instance_id) {
        Some(resolved) => InstanceOutcome::Reported { resolved },
        None => InstanceOutcome::Error,
    };
    let strict = if opts.strict.is_some() {
        let fields = std::fs::read_to_string(&report_file)
            .ok()
            .and_then(|t| report::read_strict_fields(&t, &p.instance_id));
        if fields.is_none() {
            // An official report is not a strict verdict.
            outcome = InstanceOutcome::Error;
        }
        fields.map(|(official, f)| StrictEntry {
            resolved_official: official,
            flagged: !f.flags.is_empty(),
            broken: f.broken,
        })
    } else {
        None
    };
    let infra_failure = if empty_patch || dataset.get(&p.instance_id).is_none() {
        None
    } else {
        infra_from_logs(&dir)
    };
    AggregateEntry {
        instance_id: p.instance_id.clone(),
        empty_patch,
        outcome,
        infra_failure,
        strict,
    }
}

pub use super::logs::infra_from_logs;

async fn run_instance(ctx: &Ctx, inst: &Instance, pred: &Prediction) -> InstanceRun {
    let id = inst.instance_id.clone();
    let dir = log_dir(&ctx.opts, inst, pred);
    let report = dir.join(logs::LOG_REPORT);
    if report_done(&ctx.opts, &report, &id) {
        let resolved = read_resolved(&report, &id).unwrap_or(false);
        return InstanceRun {
            instance_id: id,
            status: RunStatus::Resumed { resolved },
            message: None,
        };
    }
    let fail = |status, message: String| InstanceRun {
        instance_id: inst.instance_id.clone(),
        status,
        message: Some(message),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(
            RunStatus::Error,
            format!("{id}: cannot create {}: {e}", dir.display()),
        );
    }
    let log = match InstanceLog::create(dir.join(logs::LOG_INSTANCE)) {
        Ok(l) => l,
        Err(e) => return fail(RunStatus::Error, format!("{id}: cannot write its log: {e}")),
    };
    let mut container: Option<Container> = None;
    let result = evaluate(ctx, inst, pred, &dir, &log, &mut container).await;
    if let Some(c) = container.take() {
        remove_later(ctx, c);
    }
    let with_check = |msg: String| {
        format!(
            "Error in evaluation for {id}: {msg}\nCheck ({}) for more information.",
            log.path.display()
        )
    };
    match result {
        Ok(true) => InstanceRun {
            instance_id: id,
            status: RunStatus::Resolved,
            message: None,
        },
        Ok(false) => InstanceRun {
            instance_id: id,
            status: RunStatus::Unresolved,
            message: None,
        },
        Err(Failure::PatchApply(msg)) => {
            log.info(&msg);
            fail(RunStatus::PatchApplyFailed, with_check(msg))
        }
        Err(Failure::Timeout(secs)) => {
            let msg = format!("Test timed out after {secs} seconds.");
            log.info(&msg);
            fail(RunStatus::TimedOut, with_check(msg))
        }
        Err(Failure::Sandbox(e)) => {
            let kind = match &e {
                SandboxError::ImageMissing(_) => Some(InfraKind::ImageMissing),
                SandboxError::DaemonUnavailable(_) => Some(InfraKind::DaemonUnavailable),
                SandboxError::OutOfMemory => Some(InfraKind::OutOfMemory),
                _ => None,
            };
            log.error(&format!("Error in evaluating model for {id}: {e}"));
            match kind {
                Some(k) => {
                    log.error(&format!("{INFRA_FAILURE_LINE} {}", k.reason()));
                    fail(RunStatus::Infra(k), with_check(e.to_string()))
                }
                None => fail(RunStatus::Error, with_check(e.to_string())),
            }
        }
        Err(Failure::Other(msg)) => {
            log.error(&msg);
            fail(RunStatus::Error, with_check(msg))
        }
    }
}

/// The official `run_instance` body. Returns `resolved` (the strict
/// verdict with `--strict`).
async fn evaluate(
    ctx: &Ctx,
    inst: &Instance,
    pred: &Prediction,
    dir: &Path,
    log: &InstanceLog,
    slot: &mut Option<Container>,
) -> Result<bool, Failure> {
    let id = &inst.instance_id;
    let patch = pred.model_patch.clone().unwrap_or_default();
    let test_output = run_tests(ctx, inst, Some(&patch), dir, log, slot, &ctx.opts.run_id).await?;

    log.info(&format!("Grading answer for {id}..."));
    let grade = grading::grade(inst, &test_output);
    if let Some(err) = &grade.error {
        return Err(Failure::Other(format!("grading {id}: {err}")));
    }
    let Some(strict) = &ctx.opts.strict else {
        let json = report::instance_report_json(id, pred.model_patch.as_deref(), &grade);
        log.info(&format!(
            "report: {json}\nResult for {id}: resolved: {}",
            if grade.resolved { "True" } else { "False" }
        ));
        write_report(dir, &json)?;
        return Ok(grade.resolved);
    };
    // The container of the prediction goes first: the control uses its own.
    if let Some(c) = slot.take() {
        remove_later(ctx, c);
    }
    let mut graded = strict.grader.grade(inst, &patch, &test_output);
    let resolves = empty_patch_control(ctx, inst, &strict.control_dir).await?;
    log.info(&format!(
        "Empty-patch control for {id}: resolved: {}",
        if resolves { "True" } else { "False" }
    ));
    graded.set_empty_patch_resolves(resolves);
    let fields = report::StrictFields {
        resolved: graded.resolved,
        flags: graded.flags.clone(),
        broken: graded.broken,
    };
    let json =
        report::strict_instance_report_json(id, pred.model_patch.as_deref(), &grade, &fields);
    log.info(&format!(
        "report: {json}\nResult for {id}: resolved: {} (official: {}){}",
        if graded.resolved { "True" } else { "False" },
        if grade.resolved { "True" } else { "False" },
        if graded.flags.is_empty() {
            String::new()
        } else {
            format!("; flags: {}", graded.flags.join(", "))
        }
    ));
    write_report(dir, &json)?;
    Ok(graded.resolved)
}

fn write_report(dir: &Path, json: &str) -> Result<(), Failure> {
    let report_file = dir.join(logs::LOG_REPORT);
    std::fs::write(&report_file, json)
        .map_err(|e| Failure::Other(format!("writing {}: {e}", report_file.display())))
}

/// Removes a container in the background; the run waits for it at the end.
fn remove_later(ctx: &Ctx, c: Container) {
    let task = tokio::spawn(async move {
        if let Err(e) = c.remove().await {
            tracing::warn!("removing container {}: {e}", c.name());
        }
    });
    if let Ok(mut list) = ctx.removals.lock() {
        list.push(task);
    }
}

/// One line of `control.json`: the empty patch's official verdict for an
/// instance on one image, with the row fields it depends on.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ControlRecord {
    instance_id: String,
    image_id: String,
    spec_sha256: String,
    empty_patch_resolves: bool,
}

/// The row fields the control's verdict depends on.
fn control_spec_hash(inst: &Instance, script: &str) -> String {
    let key = serde_json::json!([
        script,
        inst.fail_to_pass,
        inst.pass_to_pass,
        inst.log_parser,
        inst.eval_type,
        inst.repo,
    ]);
    crate::corpus::sha256_hex(key.to_string().as_bytes())
}

fn path_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs the empty patch once per instance and image (cached in
/// `control_dir`): true when it resolves by the official rules, which makes
/// the instance `broken`. A control that times out does not resolve.
async fn empty_patch_control(
    ctx: &Ctx,
    inst: &Instance,
    control_dir: &Path,
) -> Result<bool, Failure> {
    let id = &inst.instance_id;
    let image = image_for(inst, ctx.opts.namespace.as_deref());
    let image_id = ctx
        .docker
        .inspect_image(&image)
        .await
        .map_err(|e| Failure::Sandbox(docker::classify(e, "inspecting image")))?
        .id
        .unwrap_or_else(|| image.clone());
    let script = eval_script(inst).map_err(|e| Failure::Other(e.to_string()))?;
    let spec = control_spec_hash(inst, &script);
    let dir = control_dir
        .join(path_safe(id))
        .join(path_safe(image_id.trim_start_matches("sha256:")));
    let record = dir.join("control.json");
    if let Some(r) = std::fs::read_to_string(&record)
        .ok()
        .and_then(|t| serde_json::from_str::<ControlRecord>(&t).ok())
        .filter(|r| &r.instance_id == id && r.image_id == image_id && r.spec_sha256 == spec)
    {
        return Ok(r.empty_patch_resolves);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Other(format!("creating {}: {e}", dir.display())))?;
    let log = InstanceLog::create(dir.join(logs::LOG_INSTANCE))
        .map_err(|e| Failure::Other(format!("writing the control log: {e}")))?;
    let mut slot = None;
    let run_id = format!("{}-control", ctx.opts.run_id);
    let result = run_tests(ctx, inst, None, &dir, &log, &mut slot, &run_id).await;
    if let Some(c) = slot.take() {
        remove_later(ctx, c);
    }
    let resolves = match result {
        Ok(output) => grading::grade(inst, &output).resolved,
        Err(Failure::Timeout(secs)) => {
            log.info(&format!("Test timed out after {secs} seconds."));
            false
        }
        Err(e) => return Err(e),
    };
    let rec = ControlRecord {
        instance_id: id.clone(),
        image_id,
        spec_sha256: spec,
        empty_patch_resolves: resolves,
    };
    let text = serde_json::to_string_pretty(&rec).unwrap_or_default() + "\n";
    let tmp = dir.join(format!("control.json.{}", marker_nonce()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &record))
        .map_err(|e| Failure::Other(format!("writing {}: {e}", record.display())))?;
    Ok(resolves)
}

/// The empty-patch control of one instance, on its own (the factory's
/// Docker verifier): true when the empty patch resolves it. Results are
/// cached under `control_dir`.
pub async fn empty_patch_resolves(
    inst: &Instance,
    opts: EvalOptions,
    control_dir: &Path,
) -> Result<bool, EvalError> {
    let docker = docker::connect().await?;
    let ctx = Ctx {
        docker,
        opts,
        removals: Mutex::new(Vec::new()),
    };
    let result = empty_patch_control(&ctx, inst, control_dir).await;
    let removals = ctx
        .removals
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    for task in removals {
        let _ = task.await;
    }
    result.map_err(|f| match f {
        Failure::Sandbox(e) => EvalError::Sandbox(e),
        Failure::PatchApply(m) | Failure::Other(m) => EvalError::Control {
            instance_id: inst.instance_id.clone(),
            message: m,
        },
        Failure::Timeout(s) => EvalError::Control {
            instance_id: inst.instance_id.clone(),
            message: format!("timed out after {s} s"),
        },
    })
}

/// A fresh container from the instance image; the patch applied by the
/// official chain (`None`: the empty-patch control, nothing applied); the
/// eval script run. Returns the test output (also written to `dir`).
async fn run_tests(
    ctx: &Ctx,
    inst: &Instance,
    patch: Option<&str>,
    dir: &Path,
    log: &InstanceLog,
    slot: &mut Option<Container>,
    run_id: &str,
) -> Result<String, Failure> {
    let id = &inst.instance_id;
    let opts = &ctx.opts;
    let script = eval_script(inst).map_err(|e| Failure::Other(e.to_string()))?;
    let image = image_for(inst, opts.namespace.as_deref());
    log.info(&format!("Creating container for {id}..."));
    let mut spec = ContainerSpec::new(
        image.clone(),
        container_name(id, run_id),
        opts.docker.for_grading(),
    );
    spec.keep = opts.keep;
    spec.labels
        .insert("airgate.run_id".into(), opts.run_id.clone());
    spec.labels.insert("airgate.instance_id".into(), id.clone());
    let container = match Container::start(&ctx.docker, &spec).await {
        Ok(c) => c,
        Err(SandboxError::ImageMissing(_)) => {
            log.error(&format!("Image {image} not found for {id}"));
            return Err(Failure::Sandbox(SandboxError::ImageMissing(image)));
        }
        Err(e) => return Err(e.into()),
    };
    log.info(&format!("Container for {id} created: {}", container.id()));
    match container.image_id().await {
        Ok(Some(digest)) => log.info(&format!("{IMAGE_DIGEST_LINE} {digest} ({image})")),
        Ok(None) => log.info(&format!("{IMAGE_DIGEST_LINE} unknown ({image})")),
        Err(e) => log.error(&format!("{IMAGE_DIGEST_LINE} unknown ({image}): {e}")),
    }
    let container = slot.insert(container);

    if let Some(patch) = patch {
        let patch_file = dir.join(logs::LOG_PATCH);
        std::fs::write(&patch_file, patch)
            .map_err(|e| Failure::Other(format!("writing {}: {e}", patch_file.display())))?;
        log.info(&format!(
            "Intermediate patch for {id} written to {}, now applying to container...",
            patch_file.display()
        ));
        // The patch and the eval script travel in one tar stream.
        container
            .upload_files(&[
                (CONTAINER_PATCH_FILE, patch.as_bytes(), 0o644),
                ("/eval.sh", script.as_bytes(), 0o755),
            ])
            .await?;
        let applied = apply_chain(&*container, CONTAINER_PATCH_FILE).await?;
        for line in &applied.log {
            log.info(line);
        }
        if !applied.applied {
            return Err(Failure::PatchApply(applied.failure_message()));
        }
    } else {
        log.info(&format!("Empty-patch control for {id}: nothing applied"));
        container
            .upload_files(&[("/eval.sh", script.as_bytes(), 0o755)])
            .await?;
    }

    let eval_file = dir.join(logs::LOG_EVAL_SCRIPT);
    std::fs::write(&eval_file, &script)
        .map_err(|e| Failure::Other(format!("writing {}: {e}", eval_file.display())))?;
    log.info(&format!(
        "Eval script for {id} written to {}; copied to container",
        eval_file.display()
    ));

    // One exec for "git diff before", the eval script and "git diff after",
    // split by a random marker line (fewer daemon round trips per instance).
    let marker = format!(">>>>> airgate {}", marker_nonce());
    let cmd = format!(
        "git -c core.fileMode=false diff 2>&1; echo '{marker}'; /bin/bash /eval.sh; \
         rc=$?; echo '{marker}'; git -c core.fileMode=false diff 2>&1; exit $rc"
    );
    let mut req = ExecRequest::new(cmd, opts.timeout);
    req.capture_limit = EVAL_CAPTURE;
    let out = container.exec(&req).await?;
    let parts = split_marked(&out.output, &marker);
    log.info(&format!("Git diff before:\n{}", parts.before.trim()));
    log.info(&format!(
        "Test runtime: {:.2} seconds",
        out.duration_ms as f64 / 1000.0
    ));
    let test_output_path = dir.join(logs::LOG_TEST_OUTPUT);
    // On timeout the output already ends with the official timeout text.
    std::fs::write(&test_output_path, &parts.eval)
        .map_err(|e| Failure::Other(format!("writing {}: {e}", test_output_path.display())))?;
    log.info(&format!(
        "Test output for {id} written to {}",
        test_output_path.display()
    ));
    if out.timed_out {
        return Err(Failure::Timeout(opts.timeout.as_secs()));
    }
    let after = parts.after.unwrap_or_default();
    log.info(&format!("Git diff after:\n{}", after.trim()));
    if after.trim() != parts.before.trim() {
        log.info("Git diff changed after running eval script");
    }
    Ok(parts.eval)
}

/// The three parts of the combined eval exec.
struct Marked {
    before: String,
    eval: String,
    after: Option<String>,
}

fn marker_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:x}{:x}{:x}",
        nanos,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Splits `diff; echo M; eval; echo M; diff` output. The eval part is
/// exactly what the script printed (a missing trailing newline included);
/// without the second marker (timeout) everything after the first is eval.
fn split_marked(output: &str, marker: &str) -> Marked {
    let first = format!("{marker}\n");
    let Some(i) = output.find(&first) else {
        return Marked {
            before: String::new(),
            eval: output.to_string(),
            after: None,
        };
    };
    let before = output[..i].to_string();
    let rest = &output[i + first.len()..];
    match rest.rfind(marker) {
        Some(j) => {
            let after = rest[j + marker.len()..]
                .strip_prefix('\n')
                .unwrap_or(&rest[j + marker.len()..]);
            Marked {
                before,
                eval: rest[..j].to_string(),
                after: Some(after.to_string()),
            }
        }
        None => Marked {
            before,
            eval: rest.to_string(),
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_digest_is_read_from_the_last_log_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(logs::LOG_INSTANCE),
            "2026-01-01 00:00:00,000 - INFO - Image digest: sha256:aaa (img)\n\
             2026-01-01 00:00:01,000 - INFO - Image digest: sha256:bbb (img)\n\
             2026-01-01 00:00:02,000 - INFO - Image digest: unknown (img)\n",
        )
        .unwrap();
        assert_eq!(
            image_digest_from_log(dir.path()).as_deref(),
            Some("sha256:bbb")
        );
        std::fs::write(dir.path().join(logs::LOG_INSTANCE), "no digest here\n").unwrap();
        assert_eq!(image_digest_from_log(dir.path()), None);
    }

    #[test]
    fn marked_output_splits_exactly() {
        let m = split_marked("d1\nM\nout\nM\nd2\n", "M");
        assert_eq!((m.before.as_str(), m.eval.as_str()), ("d1\n", "out\n"));
        assert_eq!(m.after.as_deref(), Some("d2\n"));
        let m = split_marked("M\nno newline at endM\n", "M");
        assert_eq!(m.eval, "no newline at end");
        let m = split_marked("M\npartial\n\nTimeout error: 5 seconds exceeded.", "M");
        assert_eq!(m.eval, "partial\n\nTimeout error: 5 seconds exceeded.");
        assert!(m.after.is_none());
    }

    #[test]
    fn explicit_infra_lines_win_and_round_trip() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(logs::LOG_INSTANCE),
            format!("x - ERROR - {INFRA_FAILURE_LINE} image_missing\n"),
        )
        .unwrap();
        assert_eq!(
            infra_from_logs(d.path()),
            Some(("image_missing".to_string(), true))
        );
        std::fs::write(d.path().join(logs::LOG_INSTANCE), "all fine\n").unwrap();
        assert_eq!(infra_from_logs(d.path()), None);
        for k in [
            InfraKind::ImageMissing,
            InfraKind::DaemonUnavailable,
            InfraKind::OutOfMemory,
        ] {
            assert_eq!(InfraKind::from_reason(k.reason()), Some(k));
        }
    }

    #[test]
    fn report_reader_handles_the_official_shape() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("report.json");
        std::fs::write(
            &p,
            "{\n    \"a__b-1\": {\n        \"resolved\": true\n    }\n}",
        )
        .unwrap();
        assert_eq!(read_resolved(&p, "a__b-1"), Some(true));
        assert_eq!(read_resolved(&p, "other"), None);
        std::fs::write(&p, "").unwrap();
        assert_eq!(read_resolved(&p, "a__b-1"), None);
    }
}
