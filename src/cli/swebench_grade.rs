//! `airgate swebench grade`.
use super::swebench::GradeArgs;
use crate::error::CliError;

/// Re-grades a folder of logs.
pub async fn run(_args: GradeArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("swebench grade").into())
}
