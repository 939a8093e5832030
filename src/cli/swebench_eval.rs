//! `airgate swebench eval` and `eval-script`.
use super::swebench::{EvalArgs, EvalScriptArgs};
use crate::error::CliError;

/// Runs the Docker evaluation.
pub async fn run_eval(_args: EvalArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("swebench eval").into())
}

/// Prints an instance's eval script.
pub async fn run_eval_script(_args: EvalScriptArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("swebench eval-script").into())
}
