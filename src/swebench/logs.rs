//! The official log layout: `logs/run_evaluation/<run_id>/<model>/<instance>/`
//! with `report.json`, `test_output.txt`, `patch.diff`, `eval.sh` and
//! `run_instance.log` inside.

use std::path::{Path, PathBuf};

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
