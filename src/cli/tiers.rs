//! `airgate tiers list|validate|run`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// Arguments of `airgate tiers`.
#[derive(Debug, Args)]
pub struct TiersArgs {
    /// Which tiers action.
    #[command(subcommand)]
    pub action: TiersAction,
}

/// `tiers` subcommands.
#[derive(Debug, Subcommand)]
pub enum TiersAction {
    /// Show the tasks by tier and language.
    List(TierCommon),
    /// Check every task: fails as shipped, passes with solution.patch, tamper-proof.
    Validate(TierCommon),
    /// Run models over the suite.
    Run(TierRun),
}

/// Options shared by every `tiers` action.
#[derive(Debug, Args)]
pub struct TierCommon {
    /// Task suite directory.
    #[arg(long, default_value = "tasks")]
    pub tasks: PathBuf,
    /// Only this tier.
    #[arg(long)]
    pub tier: Option<String>,
}

/// `tiers run` options.
#[derive(Debug, Args)]
pub struct TierRun {
    #[command(flatten)]
    /// Suite selection.
    pub common: TierCommon,
    /// Model spec; repeat to compare models.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// Episodes per task (pass@k when > 1).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Run directory (default runs/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `airgate tiers`.
pub async fn run(_args: TiersArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("tiers").into())
}
