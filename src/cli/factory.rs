//! `airgate factory run`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// Arguments of `airgate factory`.
#[derive(Debug, Args)]
pub struct FactoryArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: FactoryAction,
}

/// `factory` subcommands.
#[derive(Debug, Subcommand)]
pub enum FactoryAction {
    /// Solve public instances with the teacher and keep only verified trajectories.
    Run(FactoryRunArgs),
}

/// `factory run` options.
#[derive(Debug, Args)]
pub struct FactoryRunArgs {
    /// Dataset file (must be a public source).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Teacher model spec.
    #[arg(long)]
    pub teacher: String,
    /// Corpus output directory (rerun the same one to resume).
    #[arg(long)]
    pub out: PathBuf,
    /// Concurrent episodes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Episodes per instance.
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Cap on kept rows per instance.
    #[arg(long)]
    pub max_per_instance: Option<u32>,
    /// Deterministic slice I/N of the instance ids.
    #[arg(long)]
    pub shard: Option<String>,
    /// Only these instances.
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
    /// Allowlist of public sources.
    #[arg(long, default_value = "configs/public_sources.toml")]
    pub sources: PathBuf,
}

/// Runs `airgate factory`.
pub async fn run(_args: FactoryArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("factory").into())
}
