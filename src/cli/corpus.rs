//! `airgate corpus stats|verify|export|merge`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// Arguments of `airgate corpus`.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: CorpusAction,
}

/// `corpus` subcommands.
#[derive(Debug, Subcommand)]
pub enum CorpusAction {
    /// Rows, instances, repos, models, tokens.
    Stats {
        /// Corpus directory.
        dir: PathBuf,
    },
    /// Recompute every sha256 and check schema and manifest.
    Verify {
        /// Corpus directory.
        dir: PathBuf,
    },
    /// Export for training.
    Export {
        /// Corpus directory.
        dir: PathBuf,
        /// `sft-openai` or `sharegpt`.
        #[arg(long, default_value = "sft-openai")]
        format: String,
        /// Output file (JSONL).
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge and dedup corpora.
    Merge {
        /// Input corpora.
        inputs: Vec<PathBuf>,
        /// Output corpus.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `airgate corpus`.
pub async fn run(_args: CorpusArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("corpus").into())
}
