//! `airgate report RUN_DIR... --out FILE.html`.
use std::path::PathBuf;

use clap::Args;

use crate::error::CliError;

/// Arguments of `airgate report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories from `tiers run`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// HTML output; the Markdown summary goes beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `airgate report`.
pub async fn run(_args: ReportArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("report").into())
}
