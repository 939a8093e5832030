//! Re-grading a folder of `<instance>/test_output.txt` logs (`swebench
//! grade`): every instance with the one grader, in parallel, each
//! `report.json` and the aggregate `<model>.<run_id>.json` written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::dataset::Dataset;
use super::grading::{self, GradeMode, InstanceGrade};
use super::instance::Instance;
use super::logs::{self, LOG_INSTANCE, LOG_PATCH, LOG_REPORT, LOG_TEST_OUTPUT};
use super::parsers::universal_newlines;
use super::predictions::Prediction;
use super::report::{
    AggregateEntry, InstanceOutcome, aggregate_report, aggregate_report_name, instance_report_json,
};
use crate::error::Retryable;

/// A folder that cannot be re-graded.
#[derive(Debug, thiserror::Error)]
pub enum RegradeError {
    /// The folder cannot be listed.
    #[error("cannot list {}: {error}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// No instance folder holds a test log.
    #[error("no <instance>/{LOG_TEST_OUTPUT} under {}", .0.display())]
    NoLogs(PathBuf),
    /// The aggregate report cannot be written.
    #[error("cannot {what} {}: {error}", path.display())]
    Write {
        /// `create` or `write`.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl Retryable for RegradeError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// What to re-grade and where the reports go.
pub struct RegradeRequest<'a> {
    /// The folder of `<instance>/test_output.txt` logs.
    pub logs: &'a Path,
    /// The dataset the run used.
    pub dataset: &'a Dataset,
    /// The model patches by instance (else each folder's `patch.diff`).
    pub predictions: Option<&'a HashMap<String, Prediction>>,
    /// A grading mode forced on every log (else detected per log).
    pub force: Option<GradeMode>,
    /// The model name in the aggregate report's name.
    pub model: &'a str,
    /// The run id in the aggregate report's name.
    pub run_id: &'a str,
    /// Where `<instance>/report.json` and the aggregate go.
    pub out: &'a Path,
}

/// Result of grading one instance folder.
#[derive(Debug)]
pub struct Graded {
    /// The folder's instance.
    pub instance_id: String,
    /// The grade, when the log could be graded.
    pub grade: Option<InstanceGrade>,
    /// Why it could not be graded (or its report not written).
    pub error: Option<String>,
    /// The model patch was empty.
    pub empty_patch: bool,
    /// The infrastructure failure of an unresolved run: `(reason, environment)`.
    pub infra: Option<(String, bool)>,
}

/// The folder's grades and the aggregate report's totals.
#[derive(Debug)]
pub struct FolderGrade {
    /// One per instance folder, sorted by folder name.
    pub graded: Vec<Graded>,
    /// Instances resolved.
    pub resolved: usize,
    /// Empty patches.
    pub empty_patches: usize,
    /// Instances in the dataset.
    pub total: usize,
    /// The aggregate report written.
    pub path: PathBuf,
}

/// Re-grades every instance folder under `req.logs`, calling `tick` with
/// the number of folders after each, and writes the reports.
pub fn grade_folder(
    req: &RegradeRequest<'_>,
    tick: &(dyn Fn(usize) + Sync),
) -> Result<FolderGrade, RegradeError> {
    let dirs = instance_dirs(req.logs).map_err(|error| RegradeError::List {
        path: req.logs.to_path_buf(),
        error,
    })?;
    if dirs.is_empty() {
        return Err(RegradeError::NoLogs(req.logs.to_path_buf()));
    }
    let index = req.dataset.index();
    let graded: Vec<Graded> = dirs
        .par_iter()
        .map(|(id, dir)| {
            let g = grade_one(id, dir, &index, req.predictions, req.force, req.out);
            tick(dirs.len());
            g
        })
        .collect();
    summarize(req, graded)
}

fn summarize(req: &RegradeRequest<'_>, graded: Vec<Graded>) -> Result<FolderGrade, RegradeError> {
    let known = req.dataset.index();
    let entries: Vec<AggregateEntry> = graded
        .iter()
        .filter(|g| known.contains_key(g.instance_id.as_str()))
        .map(|g| AggregateEntry {
            instance_id: g.instance_id.clone(),
            empty_patch: g.empty_patch,
            outcome: match (&g.grade, &g.error) {
                (Some(x), None) => InstanceOutcome::Reported {
                    resolved: x.resolved,
                },
                _ => InstanceOutcome::Error,
            },
            infra_failure: g.infra.clone(),
            strict: None,
        })
        .collect();
    let ids: Vec<String> = req
        .dataset
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    let agg = aggregate_report(&ids, &entries);
    std::fs::create_dir_all(req.out).map_err(|error| RegradeError::Write {
        what: "create",
        path: req.out.to_path_buf(),
        error,
    })?;
    let path = req.out.join(aggregate_report_name(req.model, req.run_id));
    std::fs::write(&path, agg.to_json()).map_err(|error| RegradeError::Write {
        what: "write",
        path: path.clone(),
        error,
    })?;
    Ok(FolderGrade {
        graded,
        resolved: agg.resolved,
        empty_patches: agg.empty_patches,
        total: agg.total,
        path,
    })
}

fn grade_one(
    id: &str,
    dir: &Path,
    index: &HashMap<&str, &Instance>,
    preds: Option<&HashMap<String, Prediction>>,
    force: Option<GradeMode>,
    out: &Path,
) -> Graded {
    let mut result = Graded {
        instance_id: id.to_owned(),
        grade: None,
        error: None,
        empty_patch: false,
        infra: None,
    };
    let Some(instance) = index.get(id) else {
        result.error = Some("not in the dataset; pass the dataset this run used".into());
        return result;
    };
    // One read buffer per worker thread, reused: fresh multi-megabyte
    // buffers per log cost more in page faults than the grading itself.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        let graded = grade_log(id, dir, instance, preds, force, out, buf, result);
        // Keep a typical log's worth, not the largest log ever seen.
        if buf.capacity() > KEEP_BUFFER_BYTES {
            *buf = Vec::new();
        }
        graded
    })
}

/// Read buffers above this are released after use.
const KEEP_BUFFER_BYTES: usize = 64 << 20;

#[allow(clippy::too_many_arguments)]
fn grade_log(
    id: &str,
    dir: &Path,
    instance: &Instance,
    preds: Option<&HashMap<String, Prediction>>,
    force: Option<GradeMode>,
    out: &Path,
    bytes: &mut Vec<u8>,
    mut result: Graded,
) -> Graded {
    bytes.clear();
    let read = std::fs::File::open(dir.join(LOG_TEST_OUTPUT))
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, bytes));
    if let Err(e) = read {
        result.error = Some(format!("cannot read {LOG_TEST_OUTPUT}: {e}"));
        return result;
    }
    let bytes: &[u8] = bytes;
    // The model patch: from --predictions, else patch.diff, else "unknown but present".
    let patch: Option<String> = match preds {
        Some(p) => match p.get(id) {
            Some(pred) => pred.model_patch.clone(),
            None => {
                result.error = Some("no prediction for this instance in --predictions".into());
                return result;
            }
        },
        None => match std::fs::read(dir.join(LOG_PATCH)) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(_) => Some(String::from("<patch not recorded>")),
        },
    };
    result.empty_patch = patch.as_deref().is_none_or(str::is_empty);
    // Valid UTF-8 (the common case) is checked by the fast validator; only
    // invalid logs take the lossy path.
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let content = universal_newlines(&text);
    let grade = match force {
        Some(mode) => grading::grade_with_mode(instance, &content, mode),
        None => grading::grade(instance, &content),
    };
    if let Some(e) = &grade.error {
        result.error = Some(e.clone());
    } else {
        let report = instance_report_json(id, patch.as_deref(), &grade);
        let target = out.join(id);
        let write = std::fs::create_dir_all(&target)
            .and_then(|_| std::fs::write(target.join(LOG_REPORT), report));
        if let Err(e) = write {
            result.error = Some(format!(
                "cannot write {}: {e}",
                target.join(LOG_REPORT).display()
            ));
        }
    }
    if !grade.resolved {
        // classify_logs(test_output, run_instance.log), as make_run_report
        // does, decided as `swebench eval` decides it.
        let instance_log = logs::read_log(&dir.join(LOG_INSTANCE)).unwrap_or_default();
        result.infra = logs::infra_failure(&content, &instance_log);
    }
    result.grade = Some(grade);
    result
}

/// `(instance_id, folder)` for every subfolder holding a `test_output.txt`, sorted.
fn instance_dirs(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.join(LOG_TEST_OUTPUT).is_file()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            out.push((name.to_owned(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}
