//! `airgate images validate`: proves each instance image can grade at all.
//! The gold patch must resolve and the empty patch must not; otherwise the
//! instance (or its image) is broken and any score on it is noise. The
//! result, `validation.json`, is what `--require-validated` checks, so a
//! broken instance is named instead of silently scored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bollard::Docker;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::dataset::Dataset;
use super::eval::instance_image_digest;
use super::eval::{self, EvalError, EvalOptions, RunStatus};
use super::instance::Instance;
use super::instance::image_for;
use super::logs;
use super::predictions::Prediction;
use crate::error::Retryable;
use crate::sandbox::SandboxError;

/// File name of the validation record.
pub const VALIDATION_FILE: &str = "validation.json";
/// Current `schema_version` of `validation.json`.
pub const VALIDATION_SCHEMA: u32 = 1;

/// One patch's outcome on an instance image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOutcome {
    /// The official verdict; `None` when the run ended without a report
    /// (patch did not apply, timeout, infrastructure failure).
    pub resolved: Option<bool>,
    /// `resolved`, `unresolved`, or why there is no verdict
    /// (`patch_apply_failed`, `timed_out`, `image_missing`, `error`...).
    pub status: String,
    /// Wall time of the run, seconds.
    pub duration_s: f64,
}

/// What validation found for one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceValidation {
    /// The image name used.
    pub image: String,
    /// Its content id (`sha256:...`) when present.
    pub image_digest: Option<String>,
    /// The gold patch's outcome (must be resolved).
    pub gold: PatchOutcome,
    /// The empty patch's outcome (must not be resolved).
    pub empty: PatchOutcome,
    /// Both hold: gold resolves and the empty patch does not.
    pub valid: bool,
    /// Tests that failed under the gold patch (F2P and P2P failures).
    #[serde(default)]
    pub failing_tests: Vec<String>,
    /// Why the instance is not valid, in words (empty when valid).
    #[serde(default)]
    pub reason: String,
}

/// `validation.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationFile {
    /// Format version ([`VALIDATION_SCHEMA`]).
    pub schema_version: u32,
    /// The dataset path validated (last run).
    pub dataset: String,
    /// When it was last updated.
    pub updated_at: String,
    /// Per instance id.
    pub instances: BTreeMap<String, InstanceValidation>,
}

/// Why validation could not run or a run was refused.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The engine failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A run of the eval failed as a whole.
    #[error("{0}")]
    Eval(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// `validation.json` is malformed.
    #[error("{path}: not a validation record ({message}); rerun `airgate images validate`")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// `--require-validated`: some selected instances are not validated.
    #[error("{0}")]
    NotValidated(String),
}

impl Retryable for ValidateError {
    fn is_retryable(&self) -> bool {
        matches!(self, ValidateError::Sandbox(e) if e.is_retryable())
    }
}

/// Settings of a validation run.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Where `validation.json` and the logs (`validation_logs/`) go.
    pub out: PathBuf,
    /// Parallel instances.
    pub max_workers: usize,
    /// Per-run limit of `eval.sh`.
    pub timeout: std::time::Duration,
    /// Image namespace (`None` for local names).
    pub namespace: Option<String>,
    /// Container limits (eval defaults are applied by the eval).
    pub docker: crate::sandbox::docker::DockerConfig,
    /// Dataset path, recorded.
    pub dataset_label: String,
    /// Draw a progress bar.
    pub progress: bool,
}

impl ValidationFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, ValidateError> {
        let text = std::fs::read_to_string(path).map_err(|e| ValidateError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| ValidateError::Malformed {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

fn status_name(s: &RunStatus) -> String {
    match s {
        RunStatus::Resolved | RunStatus::Resumed { resolved: true } => "resolved".into(),
        RunStatus::Unresolved | RunStatus::Resumed { resolved: false } => "unresolved".into(),
        RunStatus::PatchApplyFailed => "patch_apply_failed".into(),
        RunStatus::TimedOut => "timed_out".into(),
        RunStatus::Infra(k) => k.reason().into(),
        RunStatus::Error => "error".into(),
    }
}

/// The failing tests of a gold run, from its `report.json`.
fn failing_tests(dir: &Path, id: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join(logs::LOG_REPORT)) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        return vec![];
    };
    let mut out = vec![];
    for key in ["FAIL_TO_PASS", "PASS_TO_PASS"] {
        if let Some(list) = v[id]["tests_status"][key]["failure"].as_array() {
            out.extend(list.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
    }
    out
}

/// Validates one instance: gold, then the empty patch, each in a fresh
/// container from the instance image, graded by the official rules.
async fn validate_one(
    docker: &Docker,
    inst: &Instance,
    opts: &ValidateOptions,
) -> Result<InstanceValidation, ValidateError> {
    let id = &inst.instance_id;
    let image = image_for(inst, opts.namespace.as_deref());
    let logs_root = opts.out.join("validation_logs");
    // A fresh run id per run and instance: an old report must never stand
    // in for a new image's verdict (the eval resumes on existing reports).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run_id = format!(
        "validate-{}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let eval_opts = EvalOptions {
        run_id: run_id.clone(),
        max_workers: 1,
        timeout: opts.timeout,
        keep: false,
        root: logs_root.clone(),
        report_dir: logs_root.join("reports").join(id),
        namespace: opts.namespace.clone(),
        docker: opts.docker.clone(),
        dataset_label: opts.dataset_label.clone(),
        progress: false,
        strict: None,
    };
    let dataset = Dataset {
        instances: vec![inst.clone()],
        skipped: vec![],
    };
    let gold = Prediction {
        instance_id: id.clone(),
        model_name_or_path: Some("gold".into()),
        model_patch: Some(inst.patch.clone()),
    };
    let started = Instant::now();
    let summary = eval::run_eval(&dataset, &[gold], &[], eval_opts.clone())
        .await
        .map_err(|e| match e {
            EvalError::Sandbox(s) => ValidateError::Sandbox(s),
            other => ValidateError::Eval(format!("{id}: gold run: {other}")),
        })?;
    let gold_secs = started.elapsed().as_secs_f64();
    let run = summary.runs.into_iter().next();
    let gold_dir = logs::instance_log_dir(&logs_root, &run_id, Some("gold"), id);
    let gold_status = run
        .as_ref()
        .map(|r| status_name(&r.status))
        .unwrap_or_else(|| "error".into());
    let gold_resolved = match run.as_ref().map(|r| &r.status) {
        Some(RunStatus::Resolved | RunStatus::Resumed { resolved: true }) => Some(true),
        Some(RunStatus::Unresolved | RunStatus::Resumed { resolved: false }) => Some(false),
        _ => None,
    };
    let digest = match eval::image_digest_from_log(&gold_dir) {
        Some(d) => Some(d),
        None => instance_image_digest(docker, inst, opts.namespace.as_deref()).await?,
    };

    let started = Instant::now();
    let empty = if digest.is_none() {
        PatchOutcome {
            resolved: None,
            status: gold_status.clone(),
            duration_s: 0.0,
        }
    } else {
        match eval::empty_patch_resolves(inst, eval_opts, &logs_root.join("empty_patch")).await {
            Ok(r) => PatchOutcome {
                resolved: Some(r),
                status: if r { "resolved" } else { "unresolved" }.into(),
                duration_s: started.elapsed().as_secs_f64(),
            },
            Err(EvalError::Sandbox(s)) if !s.is_retryable() => PatchOutcome {
                resolved: None,
                status: format!("error: {s}"),
                duration_s: started.elapsed().as_secs_f64(),
            },
            Err(EvalError::Sandbox(s)) => return Err(ValidateError::Sandbox(s)),
            Err(other) => PatchOutcome {
                resolved: None,
                status: format!("error: {other}"),
                duration_s: started.elapsed().as_secs_f64(),
            },
        }
    };
    let failing = if gold_resolved == Some(true) {
        vec![]
    } else {
        failing_tests(&gold_dir, id)
    };
    let mut reasons = vec![];
    match gold_resolved {
        Some(true) => {}
        Some(false) => reasons.push(format!(
            "the gold patch does not resolve it ({} failing test(s))",
            failing.len()
        )),
        None => reasons.push(format!(
            "the gold run ended without a verdict ({gold_status})"
        )),
    }
    match empty.resolved {
        Some(false) => {}
        Some(true) => reasons.push("the empty patch resolves it".into()),
        None => reasons.push(format!(
            "the empty-patch run ended without a verdict ({})",
            empty.status
        )),
    }
    Ok(InstanceValidation {
        image,
        image_digest: digest,
        gold: PatchOutcome {
            resolved: gold_resolved,
            status: gold_status,
            duration_s: gold_secs,
        },
        empty,
        valid: reasons.is_empty(),
        failing_tests: failing,
        reason: reasons.join("; "),
    })
}

/// Validates `instances` and merges the results into
/// `<out>/validation.json` (records of other instances are kept). Returns
/// the whole file as written.
pub async fn validate(
    instances: &[Instance],
    opts: ValidateOptions,
) -> Result<ValidationFile, ValidateError> {
    let docker = crate::sandbox::docker::connect().await?;
    std::fs::create_dir_all(&opts.out).map_err(|e| ValidateError::Io {
        context: format!("creating {}", opts.out.display()),
        source: e,
    })?;
    let path = opts.out.join(VALIDATION_FILE);
    let mut file = if path.is_file() {
        ValidationFile::read(&path)?
    } else {
        ValidationFile {
            schema_version: VALIDATION_SCHEMA,
            dataset: String::new(),
            updated_at: String::new(),
            instances: BTreeMap::new(),
        }
    };
    let bar = if opts.progress {
        let b = ProgressBar::new(instances.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} · {msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let opts = Arc::new(opts);
    let sem = Arc::new(Semaphore::new(opts.max_workers.max(1)));
    let mut set = JoinSet::new();
    for inst in instances.iter().cloned() {
        let (docker, opts, sem) = (docker.clone(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = validate_one(&docker, &inst, &opts).await;
            (inst.instance_id, r)
        });
    }
    let (mut valid, mut invalid) = (0usize, 0usize);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (id, result) = match joined {
            Ok(x) => x,
            Err(e) => {
                first_error.get_or_insert(ValidateError::Eval(format!("a worker failed: {e}")));
                continue;
            }
        };
        match result {
            Ok(v) => {
                if v.valid {
                    valid += 1;
                } else {
                    invalid += 1;
                    bar.println(format!("{id}: not valid: {}", v.reason));
                }
                file.instances.insert(id, v);
            }
            Err(e) => {
                bar.println(format!("{id}: {e}"));
                first_error.get_or_insert(e);
            }
        }
        bar.inc(1);
        bar.set_message(format!("valid {valid} · not valid {invalid}"));
    }
    bar.finish_and_clear();
    file.schema_version = VALIDATION_SCHEMA;
    file.dataset = opts.dataset_label.clone();
    file.updated_at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let text = serde_json::to_string_pretty(&file).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(|e| ValidateError::Io {
        context: format!("writing {}", path.display()),
        source: e,
    })?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(file),
    }
}

/// `--require-validated FILE`: every instance in `selected` must have a
/// valid record in `file`, made on the image present now (same content id,
/// when `current_digests` names one). Refuses with every offender named.
pub fn require_validated(
    path: &Path,
    file: &ValidationFile,
    selected: &[&Instance],
    current_digests: &BTreeMap<String, Option<String>>,
) -> Result<(), ValidateError> {
    let (mut failed, mut unknown, mut stale) = (vec![], vec![], vec![]);
    for inst in selected {
        let id = &inst.instance_id;
        match file.instances.get(id) {
            None => unknown.push(id.clone()),
            Some(v) if !v.valid => failed.push(format!("{id} ({})", v.reason)),
            Some(v) => {
                if let Some(Some(now)) = current_digests.get(id)
                    && v.image_digest.as_deref() != Some(now.as_str())
                {
                    stale.push(format!(
                        "{id} (validated on {}, the image is now {now})",
                        v.image_digest.as_deref().unwrap_or("no image")
                    ));
                }
            }
        }
    }
    if failed.is_empty() && unknown.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "--require-validated {}: refusing to score instances that are not validated",
        path.display()
    );
    if !failed.is_empty() {
        msg.push_str(&format!("\n  failed validation: {}", failed.join(", ")));
    }
    if !unknown.is_empty() {
        msg.push_str(&format!("\n  never validated: {}", unknown.join(" ")));
    }
    if !stale.is_empty() {
        msg.push_str(&format!(
            "\n  validated on another image: {}",
            stale.join(", ")
        ));
    }
    msg.push_str("\nrun `airgate images validate` on them, or leave them out with --instance-ids");
    Err(ValidateError::NotValidated(msg))
}

/// Reads `path` and checks `selected` against it, asking the engine for the
/// images' current content ids (see [`require_validated`]).
pub async fn check_required(
    path: &Path,
    selected: &[&Instance],
    namespace: Option<&str>,
) -> Result<(), ValidateError> {
    let file = ValidationFile::read(path)?;
    let mut digests = BTreeMap::new();
    // Without an engine the eval fails on its own; the id check needs one.
    if let Ok(docker) = crate::sandbox::docker::connect().await {
        for inst in selected {
            let d = instance_image_digest(&docker, inst, namespace).await?;
            digests.insert(inst.instance_id.clone(), d);
        }
    }
    require_validated(path, &file, selected, &digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(valid: bool, digest: &str) -> InstanceValidation {
        let o = |r| PatchOutcome {
            resolved: Some(r),
            status: String::new(),
            duration_s: 1.0,
        };
        InstanceValidation {
            image: "img".into(),
            image_digest: Some(digest.into()),
            gold: o(valid),
            empty: o(false),
            valid,
            failing_tests: vec![],
            reason: if valid {
                String::new()
            } else {
                "the gold patch does not resolve it (1 failing test(s))".into()
            },
        }
    }

    fn inst(id: &str) -> Instance {
        Instance {
            instance_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn failed_unknown_and_stale_instances_are_all_named() {
        let file = ValidationFile {
            schema_version: 1,
            dataset: "d".into(),
            updated_at: "t".into(),
            instances: [
                ("ok-1".to_string(), rec(true, "sha256:a")),
                ("bad-1".to_string(), rec(false, "sha256:a")),
                ("old-1".to_string(), rec(true, "sha256:old")),
            ]
            .into(),
        };
        let p = Path::new("v.json");
        let (ok, bad, old, new) = (inst("ok-1"), inst("bad-1"), inst("old-1"), inst("new-1"));
        let digests: BTreeMap<String, Option<String>> = [
            ("ok-1".to_string(), Some("sha256:a".to_string())),
            ("old-1".to_string(), Some("sha256:new".to_string())),
        ]
        .into();
        // Control: the valid one alone passes.
        require_validated(p, &file, &[&ok], &digests).unwrap();
        let err = require_validated(p, &file, &[&ok, &bad, &old, &new], &digests)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("failed validation: bad-1 (the gold patch"),
            "{err}"
        );
        assert!(err.contains("never validated: new-1"), "{err}");
        assert!(err.contains("old-1 (validated on sha256:old"), "{err}");
        assert!(!err.contains("ok-1"), "{err}");
    }

    #[test]
    fn file_round_trips() {
        let file = ValidationFile {
            schema_version: 1,
            dataset: "d".into(),
            updated_at: "t".into(),
            instances: [("x".to_string(), rec(true, "sha256:a"))].into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(VALIDATION_FILE);
        std::fs::write(&p, serde_json::to_string(&file).unwrap()).unwrap();
        assert_eq!(ValidationFile::read(&p).unwrap(), file);
        std::fs::write(&p, "{}").unwrap();
        assert!(matches!(
            ValidationFile::read(&p),
            Err(ValidateError::Malformed { .. })
        ));
    }
}
