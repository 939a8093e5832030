//! The official log layout: `logs/run_evaluation/<run_id>/<model>/<instance>/`
//! with `report.json`, `test_output.txt`, `patch.diff`, `eval.sh` and
//! `run_instance.log` inside.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::eval::{INFRA_FAILURE_LINE, InfraKind};
use super::grading;
use super::parsers::universal_newlines;

/// `RUN_EVALUATION_LOG_DIR`, relative to the working directory.
pub const RUN_EVALUATION_LOG_DIR: &str = "logs/run_evaluation";
/// The per-instance report.
pub const LOG_REPORT: &str = "report.json";
/// The eval script's combined output.
pub const LOG_TEST_OUTPUT: &str = "test_output.txt";
/// The harness's own per-instance log.
pub const LOG_INSTANCE: &str = "run_instance.log";
/// The model patch as applied.
pub const LOG_PATCH: &str = "patch.diff";
/// The eval script that ran.
pub const LOG_EVAL_SCRIPT: &str = "eval.sh";
/// Run metadata written at eval time.
pub const LOG_RUN_METADATA: &str = "run.json";

/// The model folder name: `/` becomes `__`; an absent name is `None`.
pub fn model_dir_name(model_name_or_path: Option<&str>) -> String {
    model_name_or_path.unwrap_or("None").replace('/', "__")
}

/// `<root>/logs/run_evaluation/<run_id>`.
pub fn run_dir(root: &Path, run_id: &str) -> PathBuf {
    root.join(RUN_EVALUATION_LOG_DIR).join(run_id)
}

/// `<root>/logs/run_evaluation/<run_id>/<model>/<instance_id>`.
pub fn instance_log_dir(
    root: &Path,
    run_id: &str,
    model_name_or_path: Option<&str>,
    instance_id: &str,
) -> PathBuf {
    run_dir(root, run_id)
        .join(model_dir_name(model_name_or_path))
        .join(instance_id)
}

/// Guesses `(run_id, model)` from a folder laid out as
/// `.../<run_id>/<model>/` (the folder `grade --logs` points at).
pub fn infer_run_and_model(model_dir: &Path) -> (Option<String>, Option<String>) {
    let name = |p: Option<&Path>| {
        p.and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .map(str::to_owned)
    };
    let abs = std::path::absolute(model_dir).unwrap_or_else(|_| model_dir.to_path_buf());
    (name(abs.parent()), name(Some(&abs)))
}

/// The infrastructure failure of a run that did not resolve, decided in
/// this one place for `swebench eval` and `swebench grade`: our explicit
/// `Infrastructure Failure` line in `run_instance.log` first (a broken
/// environment), else the official post-hoc signatures
/// ([`grading::classify_text`]) over the test output and that log.
/// `(reason, environment)`: `environment` is true for the environment tier.
pub fn infra_failure(test_output: &str, instance_log: &str) -> Option<(String, bool)> {
    if let Some(reason) = instance_log.lines().find_map(|l| {
        l.find(INFRA_FAILURE_LINE)
            .map(|i| l[i + INFRA_FAILURE_LINE.len()..].trim().to_string())
    }) && InfraKind::from_reason(&reason).is_some()
    {
        return Some((reason, true));
    }
    let text = match (test_output.is_empty(), instance_log.is_empty()) {
        (true, _) => Cow::Borrowed(instance_log),
        (false, true) => Cow::Borrowed(test_output),
        (false, false) => Cow::Owned(format!("{test_output}\n{instance_log}")),
    };
    grading::classify_text(&text).map(|f| (f.reason.to_string(), f.environment))
}

/// [`infra_failure`] of an instance's log folder (`test_output.txt` and
/// `run_instance.log`; a missing file counts as empty).
pub fn infra_from_logs(dir: &Path) -> Option<(String, bool)> {
    let out = read_log(&dir.join(LOG_TEST_OUTPUT)).unwrap_or_default();
    let log = read_log(&dir.join(LOG_INSTANCE)).unwrap_or_default();
    infra_failure(&out, &log)
}

/// A log file as text: invalid UTF-8 replaced, line ends made `\n`.
pub fn read_log(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(universal_newlines(&String::from_utf8_lossy(&bytes)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let p = instance_log_dir(Path::new("/w"), "r1", Some("org/m"), "a__b-1");
        assert_eq!(p, Path::new("/w/logs/run_evaluation/r1/org__m/a__b-1"));
        assert_eq!(model_dir_name(None), "None");
        let (r, m) = infer_run_and_model(Path::new("/x/logs/run_evaluation/r1/org__m"));
        assert_eq!((r.as_deref(), m.as_deref()), (Some("r1"), Some("org__m")));
    }
}
