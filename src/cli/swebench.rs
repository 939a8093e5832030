//! `airgate swebench grade|eval|eval-script`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Arguments of `airgate swebench`.
#[derive(Debug, Args)]
pub struct SwebenchArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: SwebenchAction,
}

/// `swebench` subcommands.
#[derive(Debug, Subcommand)]
pub enum SwebenchAction {
    /// Re-grade existing run logs.
    Grade(GradeArgs),
    /// Run the official-style evaluation in Docker.
    Eval(EvalArgs),
    /// Print the eval script that would run.
    EvalScript(EvalScriptArgs),
}

/// `swebench grade` options.
#[derive(Debug, Args)]
pub struct GradeArgs {
    /// Folder of `<instance>/test_output.txt` logs.
    #[arg(long)]
    pub logs: PathBuf,
    /// Dataset file (JSONL, JSON or Parquet).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Where to write reports (default: beside the logs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Predictions file (.jsonl/.json) for patches and the model name;
    /// without it, each instance's `patch.diff` is used when present.
    #[arg(long)]
    pub predictions: Option<String>,
    /// Run id for the aggregate report name (default: the parent folder's name).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Model name for the aggregate report name (default: the logs folder's name).
    #[arg(long)]
    pub model: Option<String>,
    /// Grading rules: auto-detect per log, or force `markers` (5.x) / `legacy` (pre-3.0).
    #[arg(long, default_value = "auto", value_parser = ["auto", "markers", "legacy"])]
    pub mode: String,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `swebench eval` options.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Dataset file.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Predictions (.jsonl, .json list or dict), or `gold`.
    #[arg(long)]
    pub predictions: String,
    /// Run id, used in log paths and the aggregate report name.
    #[arg(long)]
    pub run_id: String,
    /// Only these instances.
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
    /// Parallel containers.
    #[arg(long, default_value_t = 4)]
    pub max_workers: usize,
    /// Per-instance timeout in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Where the aggregate report goes.
    #[arg(long, default_value = ".")]
    pub report_dir: PathBuf,
    /// Keep containers after the run, for debugging.
    #[arg(long)]
    pub keep: bool,
    /// Refuse instances that `airgate images validate` did not find valid
    /// on the image present now (validation.json), naming them.
    #[arg(long)]
    pub require_validated: Option<PathBuf>,
    /// Strict grading: `resolved` refuses predictions that change tests or
    /// runner files, trip a cheat detector, print statuses after the
    /// runner's summary or report a test twice, and instances whose empty
    /// patch resolves; `resolved_official` keeps the official verdict.
    #[arg(long)]
    pub strict: bool,
    /// With --strict: where empty-patch control results are cached
    /// (default: logs/empty_patch_control under the current directory).
    #[arg(long, requires = "strict")]
    pub control_cache: Option<PathBuf>,
    /// With --strict: the patch policy file (default: the installation's).
    #[arg(long, requires = "strict")]
    pub patch_policy: Option<PathBuf>,
}

/// `swebench eval-script` options.
#[derive(Debug, Args)]
pub struct EvalScriptArgs {
    /// Dataset file.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Instance id.
    #[arg(long)]
    pub instance: String,
}

/// Runs `airgate swebench`.
pub async fn run(args: SwebenchArgs) -> anyhow::Result<u8> {
    match args.action {
        SwebenchAction::Grade(a) => super::swebench_grade::run(a).await,
        SwebenchAction::Eval(a) => super::swebench_eval::run_eval(a).await,
        SwebenchAction::EvalScript(a) => super::swebench_eval::run_eval_script(a).await,
    }
}
